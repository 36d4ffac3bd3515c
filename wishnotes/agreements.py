"""Agreements: something a pair chooses together for a set time, ended by either without blame.

One partner proposes, from the shipped list (wishnotes.practice_texts) or in their own words,
with a start day and an optional last day; the words are an envelope of kind "agreement" sealed
to both. It takes effect only when the other partner accepts, and reads "proposed" until then.
Either partner can end it at any moment and no reason is asked. Who ended it is not stored, so
no page, log or database copy can say who "broke" it.

A shipped agreement is shown in the viewer's own language: its key is sealed with the words,
and a viewer sees the shipped title in their language, and the shipped text too as long as the
sealed text is that agreement's shipped text in some language (not the proposer's own words).

Access: every function that takes an agreement id raises PracticeNotFound for a malformed id,
another pair's agreement, or any agreement when the user is not paired.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from wishnotes import envelopes, keyring, pairing, practice_texts, submissions, texts, timezones
from wishnotes.errors import (
    AgreementSettled,
    DecryptionFailed,
    InvalidInput,
    NotPaired,
    PracticeNotFound,
)
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.models import Agreement, User

KIND = "agreement"
TEXT_MAX = 600
START_AHEAD = timedelta(days=366)
LONGEST = timedelta(days=366)
SHOWN = 100

PROPOSED, AGREED, IN_EFFECT = "proposed", "agreed", "in effect"
COMPLETE, ENDED = "complete", "ended"
# What each state reads as on the page, in the viewer's language (the codes above never change).
LABELS = {
    PROPOSED: _l("proposed"),
    AGREED: _l("agreed"),
    IN_EFFECT: _l("in effect"),
    COMPLETE: _l("complete"),
    ENDED: _l("ended"),
}

_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Opened:
    """An agreement as its viewer may see it."""

    agreement: Agreement
    title: str | None  # the shipped title (in the viewer's language), when it began from one
    text: str | None  # None: the envelope did not open (changed after it was written)
    proposed_by_me: bool
    state: str  # proposed | agreed (starts later) | in effect | complete | ended

    @property
    def label(self) -> str:
        """The state as the page says it ("in effect"), in the viewer's language."""
        return str(LABELS[self.state])

    @property
    def can_accept(self) -> bool:
        return self.state == PROPOSED and not self.proposed_by_me and self.text is not None


def shipped() -> tuple[practice_texts.AgreementText, ...]:
    """Return the agreements a partner can propose as they are."""
    return practice_texts.shipped().agreements


def propose(
    *,
    user: User,
    user_key: bytes,
    starts_on: date,
    text: str | None = None,
    shipped_key: str | None = None,
    ends_on: date | None = None,
    now: datetime,
    submission_key: str | None = None,
) -> Agreement:
    """Propose an agreement to the partner: a shipped one (by key) or the user's own words.

    A `submission_key` (see wishnotes.submissions) that already proposed one returns that
    agreement instead of a second proposal, also when both posts arrive at the same moment.
    """
    submission_key = submissions.checked(submission_key)
    if (earlier := _proposed(user, submission_key)) is not None:
        return earlier
    title = key = None
    if shipped_key:
        try:
            chosen = practice_texts.shipped().agreement(shipped_key)
        except LookupError:
            chose = _l("Please choose one of the agreements.")
            raise InvalidInput(chose, field="shipped") from None
        title, key = chosen.title, chosen.key
        text = text if (text or "").strip() else chosen.text
    text = texts.lines(
        text, max_chars=TEXT_MAX, field="text", empty=_l("Please choose an agreement or write one.")
    )
    _check_days(user, starts_on, ends_on, now=now)
    partner = pairing.partner_of(user)
    if partner is None:
        raise NotPaired()
    ring = keyring.unlock(user=user, user_key=user_key)
    created = now
    agreement_id = uuid.uuid4().hex
    body = json.dumps({"t": title, "b": text, "k": key}, ensure_ascii=False)
    agreement = Agreement(
        id=agreement_id,
        pair_id=user.pair_id,
        proposer_id=user.id,
        created_at=created,
        starts_on=starts_on,
        ends_on=ends_on,
        submission_key=submission_key,
        envelope=envelopes.seal(
            ring=ring,
            reader=partner,
            item_id=agreement_id,
            pair_id=user.pair_id,
            kind=KIND,
            body=body.encode("utf-8"),
            at=created,
            now=now,
        ),
    )
    db.session.add(agreement)
    return submissions.commit_once(agreement, earlier=lambda: _proposed(user, submission_key))


def _proposed(user: User, submission_key: str | None) -> Agreement | None:
    return submissions.made_by(Agreement, Agreement.proposer_id, user.id, submission_key)


def listing(*, user: User, user_key: bytes, now: datetime) -> list[Opened]:
    """Open the pair's agreements, newest first."""
    if user.pair_id is None:
        return []
    rows = db.session.scalars(
        select(Agreement)
        .where(Agreement.pair_id == user.pair_id)
        .order_by(Agreement.created_at.desc(), Agreement.id)
        .limit(SHOWN)
    ).all()
    if not rows:
        return []
    partner = pairing.partner_of(user)
    if partner is None:
        raise NotPaired()
    ring = keyring.unlock(user=user, user_key=user_key)
    people = {user.id: user, partner.id: partner}
    today = timezones.local_date(now, user.timezone)
    opened = [_open(row, ring, people, today=today, now=now) for row in rows]
    if ring.changed:
        db.session.commit()
    return opened


def accept(*, user: User, agreement_id: str, now: datetime) -> Agreement:
    """Accept the partner's proposal, so it takes effect from its start day."""
    agreement = _find(user, agreement_id)
    if agreement.proposer_id == user.id:
        raise PracticeNotFound()
    if agreement.ended_at is not None or agreement.accepted_at is not None:
        raise AgreementSettled()
    agreement.accepted_at = now
    db.session.commit()
    return agreement


def end(*, user: User, agreement_id: str, now: datetime) -> Agreement:
    """End an agreement (or withdraw or let go of a proposal); no reason, no name kept."""
    agreement = _find(user, agreement_id)
    if agreement.ended_at is None:
        agreement.ended_at = now
        db.session.commit()
    return agreement


def state_of(agreement: Agreement, *, today: date) -> str:
    """Return where an agreement stands on a given local day."""
    if agreement.ended_at is not None:
        return ENDED
    if agreement.accepted_at is None:
        return PROPOSED
    if agreement.ends_on is not None and today > agreement.ends_on:
        return COMPLETE
    return IN_EFFECT if today >= agreement.starts_on else AGREED


def _check_days(user: User, starts_on: date | None, ends_on: date | None, *, now: datetime):
    today = timezones.local_date(now, user.timezone)
    if not isinstance(starts_on, date) or not today - timedelta(days=1) <= starts_on:
        raise InvalidInput(_l("Please choose a start day from today on."), field="starts_on")
    if starts_on > today + START_AHEAD:
        raise InvalidInput(_l("Please choose a start day within a year."), field="starts_on")
    if ends_on is not None:
        if ends_on < starts_on:
            raise InvalidInput(_l("The last day comes on or after the first."), field="ends_on")
        if ends_on - starts_on > LONGEST:
            raise InvalidInput(_l("Please keep it to a year at most."), field="ends_on")


def _find(user: User, agreement_id: str) -> Agreement:
    if user.pair_id is None or not isinstance(agreement_id, str) or not _ID.fullmatch(agreement_id):
        raise PracticeNotFound()
    agreement = db.session.get(Agreement, agreement_id)
    if agreement is None or agreement.pair_id != user.pair_id:
        raise PracticeNotFound()
    return agreement


def _open(
    row: Agreement, ring: keyring.Keyring, people: dict[int, User], *, today: date, now: datetime
) -> Opened:
    writer = people.get(row.proposer_id)
    reader = next((p for p in people.values() if p.id != row.proposer_id), None)
    title = text = None
    try:
        if writer is None:
            raise DecryptionFailed()
        plain = envelopes.unseal(
            row.envelope,
            ring=ring,
            item_id=row.id,
            pair_id=row.pair_id,
            kind=KIND,
            writer=writer,
            reader=reader,
            at=row.created_at,
            now=now,
        )
        data = json.loads(plain.decode("utf-8"))
        title, text, key = data["t"], data["b"], data.get("k")
        if not isinstance(text, str) or not all(
            v is None or isinstance(v, str) for v in (title, key)
        ):
            raise DecryptionFailed()
    except (DecryptionFailed, ValueError, TypeError, KeyError, AttributeError):
        # A damaged agreement shows as closed: nothing of it, and it cannot be accepted.
        title = text = None
    else:
        title, text = _in_viewers_language(key=key, title=title, text=text)
    return Opened(
        agreement=row,
        title=title,
        text=text,
        proposed_by_me=row.proposer_id == ring.user.id,
        state=state_of(row, today=today),
    )


def _in_viewers_language(
    *, key: str | None, title: str | None, text: str
) -> tuple[str | None, str]:
    """Return a sealed agreement's title and text as the viewer should read them.

    A shipped agreement's title comes in the viewer's language (wishnotes.i18n.current()); its
    text too, when the sealed text is that agreement's shipped text in any language. Words of the
    proposer's own stay exactly as sealed, and so does anything the shipped texts no longer know.
    Agreements sealed before keys were kept are recognised by their title.
    """
    if title is None:
        return title, text  # the proposer's own words from the start
    every = practice_texts.every_language()
    if key is None:
        key = next((a.key for t in every for a in t.agreements if a.title == title), None)
    try:
        mine = practice_texts.shipped().agreement(key) if key else None
    except LookupError:
        mine = None
    if mine is None:
        return title, text
    as_shipped = any(a.key == key and a.text == text for t in every for a in t.agreements)
    return mine.title, mine.text if as_shipped else text
