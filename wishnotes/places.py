"""A place of our own: an imagined place a pair describes together, in turns.

One partner starts a place (with an optional name, an envelope of kind "place"), then the two
take turns: only the one whose turn it is adds the next lines (kind "place-turn"). The one who
started writes first; after that the turn passes to whoever did not write last. Either partner
ends a place; ended places stay readable and a new one can begin. A pair has at most one open
place (a unique index settles two partners starting at the same moment).

A turn's envelope names "<place id>/<position>" as its item, so a turn copied to another place
or another position does not open. Access: every function that takes a place id raises
PracticeNotFound for a malformed id, another pair's place, or any place when not paired.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from wishnotes import envelopes, keyring, pairing, practice_texts, submissions, texts
from wishnotes.errors import (
    DecryptionFailed,
    NotPaired,
    NotYourTurn,
    PlaceEnded,
    PlaceOpen,
    PracticeNotFound,
)
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.models import Place, PlaceTurn, User

NAME_KIND = "place"
TURN_KIND = "place-turn"
TURN_MAX = 600
NAME_MAX = 80
ENDED_SHOWN = 50

_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Turn:
    writer: User
    text: str | None  # None: this turn did not open (changed after it was written)
    created_at: datetime
    mine: bool


@dataclass(frozen=True)
class Opened:
    """A place as its viewer may see it."""

    place: Place
    name: str | None
    turns: list[Turn]
    next_writer: User | None  # whose turn it is; None once the place has ended
    starters: tuple[str, ...]  # offered to the viewer when it is their turn
    viewer_id: int

    @property
    def my_turn(self) -> bool:
        return self.next_writer is not None and self.next_writer.id == self.viewer_id


def start_place(
    *,
    user: User,
    user_key: bytes,
    name: str | None,
    now: datetime,
    submission_key: str | None = None,
) -> Place:
    """Start a new place for the pair, with an optional name; PlaceOpen if one is open.

    A `submission_key` (see wishnotes.submissions) that already started a place returns that
    place (open, or ended since) instead of another one or PlaceOpen, also when both posts
    arrive at the same moment.
    """
    submission_key = submissions.checked(submission_key)
    if (earlier := _started(user, submission_key)) is not None:
        return earlier
    name = texts.one_line(name, max_chars=NAME_MAX, field="name")
    partner = pairing.partner_of(user)
    if partner is None:
        raise NotPaired()
    if _open_place(user.pair_id) is not None:
        # This same form, posted twice at once, may have started it a moment ago.
        if (earlier := _started(user, submission_key)) is not None:
            return earlier
        raise PlaceOpen()
    ring = keyring.unlock(user=user, user_key=user_key)
    created = now
    place = Place(
        id=uuid.uuid4().hex,
        pair_id=user.pair_id,
        started_by_id=user.id,
        submission_key=submission_key,
    )
    place.created_at = created
    if name is not None:
        place.name_envelope = envelopes.seal(
            ring=ring,
            reader=partner,
            item_id=place.id,
            pair_id=user.pair_id,
            kind=NAME_KIND,
            body=_encode(name),
            at=created,
            now=now,
        )
    db.session.add(place)
    # Refused when the partner, or this same form, started one at the same moment.
    return submissions.commit_once(
        place, earlier=lambda: _started(user, submission_key), refused=PlaceOpen
    )


def current(*, user: User, user_key: bytes, now: datetime) -> Opened | None:
    """Open the pair's open place, if there is one."""
    if user.pair_id is None:
        return None
    place = _open_place(user.pair_id)
    return None if place is None else _opened(user, user_key, place, now=now)


def open_place(*, user: User, user_key: bytes, place_id: str, now: datetime) -> Opened:
    """Open any place of the pair, open or ended."""
    return _opened(user, user_key, _find(user, place_id), now=now)


def ended(*, user: User) -> list[Place]:
    """Return the pair's ended places, most recently ended first (metadata only)."""
    if user.pair_id is None:
        return []
    return list(
        db.session.scalars(
            select(Place)
            .where(Place.pair_id == user.pair_id, Place.ended_at.is_not(None))
            .order_by(Place.ended_at.desc(), Place.id)
            .limit(ENDED_SHOWN)
        )
    )


def add_turn(
    *,
    user: User,
    user_key: bytes,
    place_id: str,
    text: str,
    now: datetime,
    submission_key: str | None = None,
) -> PlaceTurn:
    """Add the user's lines to the place when it is their turn.

    A `submission_key` (see wishnotes.submissions) that already added a turn returns that
    turn instead of NotYourTurn, also when both posts arrive at the same moment.
    """
    submission_key = submissions.checked(submission_key)
    if (earlier := _written(user, submission_key)) is not None:
        return earlier
    empty = _l("Please write a line first.")
    text = texts.lines(text, max_chars=TURN_MAX, field="text", empty=empty)
    place = _find(user, place_id)
    if place.ended_at is not None:
        raise PlaceEnded()
    partner = pairing.partner_of(user)
    if partner is None:
        raise NotPaired()
    last = _last_turn(place.id)
    if _next_writer_id(place, last, partner_ids=(user.id, partner.id)) != user.id:
        # This same form, posted twice at once, may have written it a moment ago.
        if (earlier := _written(user, submission_key)) is not None:
            return earlier
        raise NotYourTurn()
    ring = keyring.unlock(user=user, user_key=user_key)
    created = now
    seq = 1 if last is None else last.seq + 1
    turn = PlaceTurn(
        place_id=place.id,
        pair_id=place.pair_id,
        writer_id=user.id,
        seq=seq,
        created_at=created,
        submission_key=submission_key,
        envelope=envelopes.seal(
            ring=ring,
            reader=partner,
            item_id=_turn_item(place.id, seq),
            pair_id=place.pair_id,
            kind=TURN_KIND,
            body=_encode(text),
            at=created,
            now=now,
        ),
    )
    db.session.add(turn)
    # Refused when this same form posted twice at once, or the partner's turn landed first
    # (both saw the same last turn): theirs counts.
    return submissions.commit_once(
        turn, earlier=lambda: _written(user, submission_key), refused=NotYourTurn
    )


def end_place(*, user: User, place_id: str, now: datetime) -> Place:
    """End the place for both partners; it stays readable."""
    place = _find(user, place_id)
    if place.ended_at is None:
        place.ended_at = now
        db.session.commit()
    return place


# --- internals ----------------------------------------------------------------------------


def _started(user: User, submission_key: str | None) -> Place | None:
    return submissions.made_by(Place, Place.started_by_id, user.id, submission_key)


def _written(user: User, submission_key: str | None) -> PlaceTurn | None:
    return submissions.made_by(PlaceTurn, PlaceTurn.writer_id, user.id, submission_key)


def _turn_item(place_id: str, seq: int) -> str:
    return f"{place_id}/{seq}"


def _open_place(pair_id: int) -> Place | None:
    return db.session.scalar(
        select(Place).where(Place.pair_id == pair_id, Place.ended_at.is_(None)).limit(1)
    )


def _last_turn(place_id: str) -> PlaceTurn | None:
    return db.session.scalar(
        select(PlaceTurn).where(PlaceTurn.place_id == place_id).order_by(PlaceTurn.seq.desc())
    )


def _next_writer_id(place: Place, last: PlaceTurn | None, *, partner_ids: tuple[int, int]) -> int:
    if last is None:
        return place.started_by_id
    return next(pid for pid in partner_ids if pid != last.writer_id)


def _find(user: User, place_id: str) -> Place:
    if user.pair_id is None or not isinstance(place_id, str) or not _ID.fullmatch(place_id):
        raise PracticeNotFound()
    place = db.session.get(Place, place_id)
    if place is None or place.pair_id != user.pair_id:
        raise PracticeNotFound()
    return place


def latest_turn_at(*, pair_ids: set[int]) -> dict[tuple[int, int], datetime]:
    """Return, per (pair, writer), when they last added to a place (for "something new")."""
    rows = db.session.execute(
        select(PlaceTurn.pair_id, PlaceTurn.writer_id, func.max(PlaceTurn.created_at))
        .where(PlaceTurn.pair_id.in_(pair_ids))
        .group_by(PlaceTurn.pair_id, PlaceTurn.writer_id)
    )
    return {(pair_id, writer_id): at for pair_id, writer_id, at in rows}


def _opened(user: User, user_key: bytes, place: Place, *, now: datetime) -> Opened:
    partner = pairing.partner_of(user)
    if partner is None:
        raise NotPaired()
    people = {user.id: user, partner.id: partner}
    ring = keyring.unlock(user=user, user_key=user_key)
    starter = people.get(place.started_by_id)
    name = None
    if place.name_envelope is not None and starter is not None:
        name = _try_open(
            place.name_envelope,
            ring,
            item_id=place.id,
            pair_id=place.pair_id,
            kind=NAME_KIND,
            writer=starter,
            people=people,
            at=place.created_at,
            now=now,
        )
    rows = db.session.scalars(
        select(PlaceTurn).where(PlaceTurn.place_id == place.id).order_by(PlaceTurn.seq)
    ).all()
    turns = []
    for row in rows:
        writer = people.get(row.writer_id)
        text = None
        if writer is not None and row.pair_id == place.pair_id:
            text = _try_open(
                row.envelope,
                ring,
                item_id=_turn_item(place.id, row.seq),
                pair_id=place.pair_id,
                kind=TURN_KIND,
                writer=writer,
                people=people,
                at=row.created_at,
                now=now,
            )
        turns.append(
            Turn(writer=writer, text=text, created_at=row.created_at, mine=row.writer_id == user.id)
        )
    if ring.changed:
        db.session.commit()
    next_writer = None
    if place.ended_at is None:
        last = rows[-1] if rows else None
        next_writer = people.get(_next_writer_id(place, last, partner_ids=(user.id, partner.id)))
    starters = ()
    if next_writer is not None and next_writer.id == user.id:
        starters = practice_texts.shipped().starters_for(_turn_item(place.id, len(rows) + 1))
    return Opened(
        place=place,
        name=name,
        turns=turns,
        next_writer=next_writer,
        starters=starters,
        viewer_id=user.id,
    )


def _try_open(
    envelope: bytes,
    ring: keyring.Keyring,
    *,
    item_id: str,
    pair_id: int,
    kind: str,
    writer: User,
    people: dict[int, User],
    at: datetime,
    now: datetime,
) -> str | None:
    """Open one text of a place; a damaged one shows as closed, without hiding the rest."""
    reader = next((p for p in people.values() if p.id != writer.id), None)
    try:
        plain = envelopes.unseal(
            envelope,
            ring=ring,
            item_id=item_id,
            pair_id=pair_id,
            kind=kind,
            writer=writer,
            reader=reader,
            at=at,
            now=now,
        )
        text = json.loads(plain.decode("utf-8"))["b"]
    except (DecryptionFailed, ValueError, TypeError, KeyError):
        return None
    return text if isinstance(text, str) else None


def _encode(text: str) -> bytes:
    return json.dumps({"b": text}, ensure_ascii=False).encode("utf-8")
