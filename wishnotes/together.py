"""What is new for a partner in the practices (table, place, agreements) since they last looked.

Home says it gently ("Sam added something to your table"); the weekly email only says that
something new is waiting, never what. Everything here comes from clear metadata (who did
something when), so it needs no keys. Nothing is counted: a practice has news or it has not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from wishnotes import database
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.models import Agreement, Place, PlaceTurn, PracticeSeen, RitualItem, User

RITUALS, PLACES, AGREEMENTS = "rituals", "places", "agreements"
PRACTICES = (RITUALS, PLACES, AGREEMENTS)

# What each kind of news says on the home page, in the viewer's language; %(name)s is the partner.
MESSAGES = {
    "ritual-added": _l("%(name)s added something to your table"),
    "ritual-changed": _l("%(name)s has been at your table"),
    "place-turn": _l("%(name)s added to your place"),
    "place-started": _l("%(name)s started a place for the two of you"),
    "agreement-proposed": _l("%(name)s proposed an agreement"),
    "agreement-accepted": _l("%(name)s accepted an agreement"),
}
# The first of these that applies is the one shown for its practice.
_ORDER = (
    "ritual-added",
    "ritual-changed",
    "place-turn",
    "place-started",
    "agreement-proposed",
    "agreement-accepted",
)
_PRACTICE_OF = {
    "ritual-added": RITUALS,
    "ritual-changed": RITUALS,
    "place-turn": PLACES,
    "place-started": PLACES,
    "agreement-proposed": AGREEMENTS,
    "agreement-accepted": AGREEMENTS,
}


@dataclass(frozen=True)
class News:
    practice: str
    message: str


def mark_seen(*, user: User, practice: str, now: datetime) -> None:
    """Remember that the user has looked at a practice just now."""
    if practice not in PRACTICES:
        raise ValueError(f"unknown practice {practice!r}")
    # "Seen" is the newest activity there was to see, not the clock of this request: a page
    # rendered a moment before a partner's write must not swallow it.
    latest, accepted = _latest({user.pair_id}) if user.pair_id is not None else ({}, {})
    moments = [
        at
        for (_, kind), actors in latest.items()
        if _PRACTICE_OF[kind] == practice
        for at in actors.values()
    ]
    if practice == AGREEMENTS:
        moments += list(accepted.values())
    upto = max(moments, default=now)
    seen = db.session.get(PracticeSeen, (user.id, practice))
    if seen is None:
        db.session.add(PracticeSeen(user_id=user.id, practice=practice, seen_at=upto))
    elif seen.seen_at is None or upto > seen.seen_at:
        seen.seen_at = upto
    db.session.commit()


def news(*, user: User, partner: User | None) -> list[News]:
    """Return what the partner did in each practice since the user last looked at it."""
    if user.pair_id is None or partner is None:
        return []
    kinds = _news_kinds({user.id: user.pair_id}).get(user.id, set())
    shown: dict[str, News] = {}
    for kind in _ORDER:
        practice = _PRACTICE_OF[kind]
        if kind in kinds and practice not in shown:
            message = str(MESSAGES[kind]) % {"name": partner.display_name}
            shown[practice] = News(practice, message)
    return list(shown.values())


def users_with_news(pairs: dict[int, int]) -> set[int]:
    """Of {user id: pair id}, return the users for whom something new is waiting."""
    return {user_id for user_id, kinds in _news_kinds(pairs).items() if kinds}


def _news_kinds(pairs: dict[int, int]) -> dict[int, set[str]]:
    """Of {user id: pair id}, what is new for each user (users of quiet pairs are left out)."""
    if not pairs:
        return {}
    latest, accepted = _latest(set(pairs.values()))
    active = {pair_id for pair_id, _ in latest} | {pair_id for pair_id, _ in accepted}
    pairs = {user_id: pair_id for user_id, pair_id in pairs.items() if pair_id in active}
    if not pairs:  # most pairs of a scheduler batch: nothing to read, nothing to compare
        return {}
    seen: dict[tuple[int, str], datetime] = {
        (row.user_id, row.practice): row.seen_at
        for row in db.session.execute(
            select(PracticeSeen.user_id, PracticeSeen.practice, PracticeSeen.seen_at).where(
                database.one_of(PracticeSeen.user_id, pairs)
            )
        )
    }
    result: dict[int, set[str]] = {}
    for user_id, pair_id in pairs.items():
        kinds = result.setdefault(user_id, set())
        for kind in _ORDER:
            since = seen.get((user_id, _PRACTICE_OF[kind]))
            if kind == "agreement-accepted":
                at = accepted.get((pair_id, user_id))
                moments = [] if at is None else [at]
            else:
                moments = [
                    at for actor, at in latest.get((pair_id, kind), {}).items() if actor != user_id
                ]
            if any(since is None or at > since for at in moments):
                kinds.add(kind)
    return result


def _latest(pair_ids: set[int]):
    """Return ({(pair, kind): {actor: latest time}}, {(pair, proposer): latest acceptance})."""
    # (pair, kind) -> {actor: latest time}
    latest: dict[tuple[int, str], dict[int, datetime]] = {}

    def collect(kind: str, query) -> None:
        for pair_id, actor_id, at in db.session.execute(query):
            if actor_id is not None and at is not None:
                latest.setdefault((pair_id, kind), {})[actor_id] = at

    collect(
        "ritual-added",
        select(RitualItem.pair_id, RitualItem.author_id, func.max(RitualItem.created_at))
        .where(database.one_of(RitualItem.pair_id, pair_ids))
        .group_by(RitualItem.pair_id, RitualItem.author_id),
    )
    collect(
        "ritual-changed",
        select(RitualItem.pair_id, RitualItem.activity_by_id, func.max(RitualItem.activity_at))
        .where(database.one_of(RitualItem.pair_id, pair_ids))
        .group_by(RitualItem.pair_id, RitualItem.activity_by_id),
    )
    collect(
        "place-turn",
        select(PlaceTurn.pair_id, PlaceTurn.writer_id, func.max(PlaceTurn.created_at))
        .where(database.one_of(PlaceTurn.pair_id, pair_ids))
        .group_by(PlaceTurn.pair_id, PlaceTurn.writer_id),
    )
    collect(
        "place-started",
        select(Place.pair_id, Place.started_by_id, func.max(Place.created_at))
        .where(database.one_of(Place.pair_id, pair_ids), Place.ended_at.is_(None))
        .group_by(Place.pair_id, Place.started_by_id),
    )
    collect(
        "agreement-proposed",
        select(Agreement.pair_id, Agreement.proposer_id, func.max(Agreement.created_at))
        .where(
            database.one_of(Agreement.pair_id, pair_ids),
            Agreement.accepted_at.is_(None),
            Agreement.ended_at.is_(None),
        )
        .group_by(Agreement.pair_id, Agreement.proposer_id),
    )
    # Accepting is done by the one who did not propose: keyed by the proposer, read inverted.
    accepted = {}
    for pair_id, proposer_id, at in db.session.execute(
        select(Agreement.pair_id, Agreement.proposer_id, func.max(Agreement.accepted_at))
        .where(database.one_of(Agreement.pair_id, pair_ids), Agreement.accepted_at.is_not(None))
        .group_by(Agreement.pair_id, Agreement.proposer_id)
    ):
        accepted[(pair_id, proposer_id)] = at
    return latest, accepted
