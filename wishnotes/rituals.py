"""The Table of Trust: small rituals a pair misses ("I miss…"), planned again and done on dates.

Either partner adds an item; its words are an envelope of kind "ritual" (wishnotes.envelopes)
sealed to both. The other partner may answer "Let's bring it back", or leave it: there is no
"no". Either partner plans a day, marks it done on a date (as often as it happens: the dates
are its small history), archives and restores it. Nothing is counted or scored; the table is
ordered by its newest activity.

Access: every function that takes an item id raises PracticeNotFound, never another error, for a
malformed id, an item of another pair, or any item when the user is not paired.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from wishnotes import envelopes, keyring, pairing, submissions, texts, timezones
from wishnotes.errors import DecryptionFailed, InvalidInput, NotPaired, PracticeNotFound
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.models import RitualDone, RitualItem, User

KIND = "ritual"
TEXT_MAX = 300
# A plan is for the coming months; a date done is something remembered, not far back.
PLAN_AHEAD = timedelta(days=366)
DONE_BEHIND = timedelta(days=366 * 5)

_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Opened:
    """A table item as its viewer may see it."""

    item: RitualItem
    author: User
    text: str | None  # None: the envelope did not open (changed after it was written)
    mine: bool
    done_on: list[date]  # oldest first, as a history reads


def add_item(
    *,
    user: User,
    user_key: bytes,
    text: str,
    now: datetime,
    submission_key: str | None = None,
) -> RitualItem:
    """Add an "I miss…" item to the pair's table, sealed to both partners.

    A `submission_key` (see wishnotes.submissions) that already added an item returns that
    item instead of a second one, also when both posts arrive at the same moment.
    """
    submission_key = submissions.checked(submission_key)
    if (earlier := _added(user, submission_key)) is not None:
        return earlier
    text = texts.lines(
        text, max_chars=TEXT_MAX, field="text", empty=_l("Please write what you miss first.")
    )
    partner = pairing.partner_of(user)
    if partner is None:
        raise NotPaired()
    ring = keyring.unlock(user=user, user_key=user_key)
    created = now
    item_id = uuid.uuid4().hex
    item = RitualItem(
        id=item_id,
        pair_id=user.pair_id,
        author_id=user.id,
        created_at=created,
        activity_at=created,
        activity_by_id=user.id,
        submission_key=submission_key,
        envelope=envelopes.seal(
            ring=ring,
            reader=partner,
            item_id=item_id,
            pair_id=user.pair_id,
            kind=KIND,
            body=json.dumps({"b": text}, ensure_ascii=False).encode("utf-8"),
            at=created,
            now=now,
        ),
    )
    db.session.add(item)
    return submissions.commit_once(item, earlier=lambda: _added(user, submission_key))


def _added(user: User, submission_key: str | None) -> RitualItem | None:
    return submissions.made_by(RitualItem, RitualItem.author_id, user.id, submission_key)


def table(*, user: User, user_key: bytes, now: datetime, archived: bool = False) -> list[Opened]:
    """Open the pair's table (or its archive), newest activity first."""
    if user.pair_id is None:
        return []
    items = db.session.scalars(
        select(RitualItem)
        .where(
            RitualItem.pair_id == user.pair_id,
            RitualItem.archived_at.is_not(None) if archived else RitualItem.archived_at.is_(None),
        )
        .order_by(RitualItem.activity_at.desc(), RitualItem.id)
    ).all()
    if not items:
        return []
    ring = keyring.unlock(user=user, user_key=user_key)
    partner = pairing.partner_of(user)
    people = {user.id: user, **({partner.id: partner} if partner else {})}
    dates: dict[str, list[date]] = {}
    for row in db.session.execute(
        select(RitualDone.item_id, RitualDone.done_on)
        .where(RitualDone.item_id.in_([item.id for item in items]))
        .order_by(RitualDone.done_on)
    ):
        dates.setdefault(row.item_id, []).append(row.done_on)
    opened = [_open(item, ring, people, dates.get(item.id, []), now=now) for item in items]
    if ring.changed:
        db.session.commit()
    return opened


def welcome(*, user: User, item_id: str, now: datetime) -> RitualItem:
    """Answer the partner's item with "Let's bring it back" (the author cannot)."""
    item = _find(user, item_id)
    if item.author_id == user.id:
        raise PracticeNotFound()
    if item.welcomed_at is None:
        item.welcomed_at = now
        _touch(item, user, now)
    db.session.commit()
    return item


def plan(*, user: User, item_id: str, day: date | None, now: datetime) -> RitualItem:
    """Set (or with None, clear) the day the pair plans to do it again."""
    item = _find(user, item_id)
    if day is not None:
        today = timezones.local_date(now, user.timezone)
        if not today - timedelta(days=1) <= day <= today + PLAN_AHEAD:
            raise InvalidInput(_l("Please choose a day from today to a year ahead."), field="day")
    item.planned_on = day
    _touch(item, user, now)
    db.session.commit()
    return item


def mark_done(*, user: User, item_id: str, day: date, now: datetime) -> RitualItem:
    """Write down a day it was done; the same day twice is kept once."""
    item = _find(user, item_id)
    today = timezones.local_date(now, user.timezone)
    if not isinstance(day, date) or not today - DONE_BEHIND <= day <= today:
        raise InvalidInput(_l("Please choose the day it happened, today or earlier."), field="day")
    known = db.session.get(RitualDone, (item.id, day))
    if known is None:
        db.session.add(RitualDone(item_id=item.id, done_on=day))
    if item.planned_on is not None and item.planned_on <= day:
        item.planned_on = None  # the plan came true; the next one is a new choice
    _touch(item, user, now)
    db.session.commit()
    return item


def archive(*, user: User, item_id: str, now: datetime, restore: bool = False) -> RitualItem:
    """Put an item away in the archive, or with `restore` bring it back to the table."""
    item = _find(user, item_id)
    item.archived_at = None if restore else (item.archived_at or now)
    _touch(item, user, now)
    db.session.commit()
    return item


def _touch(item: RitualItem, user: User, now: datetime) -> None:
    item.activity_at = now
    item.activity_by_id = user.id


def _find(user: User, item_id: str) -> RitualItem:
    if user.pair_id is None or not isinstance(item_id, str) or not _ID.fullmatch(item_id):
        raise PracticeNotFound()
    item = db.session.get(RitualItem, item_id)
    if item is None or item.pair_id != user.pair_id:
        raise PracticeNotFound()
    return item


def _open(
    item: RitualItem, ring: keyring.Keyring, people: dict, done: list[date], *, now: datetime
) -> Opened:
    author = people.get(item.author_id)
    reader = next((p for p in people.values() if p.id != item.author_id), None)
    if author is None or reader is None:
        return Opened(item=item, author=author, text=None, mine=False, done_on=done)
    try:
        text = _decode(
            envelopes.unseal(
                item.envelope,
                ring=ring,
                item_id=item.id,
                pair_id=item.pair_id,
                kind=KIND,
                writer=author,
                reader=reader,
                at=item.created_at,
                now=now,
            )
        )
    except DecryptionFailed:
        # One damaged item must not hide the whole table; it shows as closed, nothing of it.
        text = None
    return Opened(
        item=item,
        author=author,
        text=text,
        mine=author.id == ring.user.id,
        done_on=done,
    )


def _decode(plain: bytes) -> str:
    try:
        text = json.loads(plain.decode("utf-8"))["b"]
    except (ValueError, TypeError, KeyError):
        raise DecryptionFailed() from None
    if not isinstance(text, str):
        raise DecryptionFailed()
    return text
