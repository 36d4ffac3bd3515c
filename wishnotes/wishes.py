"""Mutual wishes: each partner answers the wish cards alone; only what both want is shown.

How the server is kept from learning the answers (README, "Mutual wishes"): the first partner to
open the deck makes a random pair secret and seals it to both partners in a signed envelope (kind
"wishkey"). Each partner's answers live in their own deck state, wrapped under their user key;
for matching, each stores two keyed tags per card for every card (crypto.wish_tags): a "yes" or
"maybe" gives tags the partner's matching answer reproduces, a "not for me" or no answer gives
random bytes. Matching is the intersection of the two tag sets, read back to cards with the
pair secret while the viewer's keys are unlocked.

Against probing: a first answer counts at once, but a changed answer counts for matching only
after CHANGE_DELAY, and only CHANGES_PER_WEEK changes are allowed in any seven days. A reveal
marks what matched since the last one.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from wishnotes import cards, crypto, envelopes, keyring, pairing
from wishnotes.errors import CardNotFound, DecryptionFailed, InvalidInput, NotPaired, TooManyChanges
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.models import User, WishDeck, WishKey

ANSWERS = ("yes", "maybe", "no")
_LETTERS = {answer[0]: answer for answer in ANSWERS}
CHANGE_DELAY = timedelta(hours=24)
CHANGES_PER_WEEK = 5
CHANGE_WINDOW = timedelta(days=7)
_STATE_PURPOSE = "wish-deck"
_TAG = crypto.WISH_TAG_BYTES
# The wrapped state is padded to whole blocks, so its length says little about how many cards
# were answered, and nothing about how (every answer is one letter).
_STATE_BLOCK = 2048


@dataclass(frozen=True)
class Deck:
    """What a person sees of their own deck: their answers and the cards open to them."""

    cards: tuple[cards.Card, ...]
    answers: dict[str, str]
    waiting: dict[str, str]  # changed answers that do not count for matching yet
    intimate_mine: bool
    intimate_both: bool
    changes_left: int

    def next_unanswered(self, after: str | None = None) -> cards.Card | None:
        """The first card without an answer, after `after` in deck order (then from the top)."""
        keys = [card.key for card in self.cards]
        start = keys.index(after) + 1 if after in keys else 0
        for card in self.cards[start:] + self.cards[:start]:
            if card.key not in self.answers and card.key != after:
                return card
        return None


@dataclass(frozen=True)
class Matches:
    shared: tuple[cards.Card, ...]  # both said yes
    talk: tuple[cards.Card, ...]  # one said yes, the other maybe
    new: frozenset[str]  # matched since the last reveal


# --- the service ------------------------------------------------------------------------------


def open_deck(*, user: User, user_key: bytes, now: datetime) -> Deck:
    """Return the user's deck, setting up the pair secret and the deck on first use."""
    return _view(_load(user, user_key, now=now), now=now)


def answer(*, user: User, user_key: bytes, card_key: str, choice: str, now: datetime) -> Deck:
    """Record the user's answer to one card (or change it, with the delay and the limit)."""
    if choice not in ANSWERS:
        raise InvalidInput(_l("Please choose one of the answers."), field="choice")
    card = _card(card_key)
    ctx = _load(user, user_key, now=now)
    if card not in _view(ctx, now=now).cards:  # the "Closer" cards, before both chose them
        raise CardNotFound()
    state = ctx.state
    previous = state["answers"].get(card.key)
    if previous == choice:
        return _view(ctx, now=now)
    if previous is not None:
        recent = _recent_changes(state, now)
        if len(recent) >= CHANGES_PER_WEEK:
            raise TooManyChanges()
        state["changes"] = [*recent, now.timestamp()]
        # Matching keeps the earlier answer until the delay has passed.
        state["before"].setdefault(card.key, previous)
        state["since"][card.key] = (now + CHANGE_DELAY).timestamp()
    state["answers"][card.key] = choice
    _store(ctx, now=now)
    db.session.commit()
    return _view(ctx, now=now)


def set_intimate(*, user: User, user_key: bytes, on: bool, now: datetime) -> Deck:
    """Turn the intimate theme on or off for the user (it shows when both turned it on)."""
    ctx = _load(user, user_key, now=now)
    ctx.row.intimate = bool(on)
    ctx.row.updated_at = now
    db.session.commit()
    return _view(ctx, now=now)


def matches(*, user: User, user_key: bytes, now: datetime) -> Matches:
    """Return the cards both partners want; mark as new those matched since the last reveal."""
    ctx = _load(user, user_key, now=now)
    theirs = _effective_tags(ctx.partner_row, now) if ctx.partner_row else b""
    common = frozenset(_chunks(_effective_tags(ctx.row, now)) & _chunks(theirs))
    found: dict[str, list[cards.Card]] = {"shared": [], "talk": []}
    for card in _view(ctx, now=now).cards:  # the same work for every card, whatever was said
        kind = crypto.wish_match(ctx.tag_key, card=card.key, role=ctx.role, common=common)
        if kind is not None:
            found[kind].append(card)
    matched = {card.key for group in found.values() for card in group}
    new = frozenset(matched - set(ctx.state["revealed"]))
    if set(ctx.state["revealed"]) != matched:
        ctx.state["revealed"] = sorted(matched)
        ctx.row.state = _wrap_state(ctx)
        db.session.commit()
    return Matches(shared=tuple(found["shared"]), talk=tuple(found["talk"]), new=new)


# --- internals --------------------------------------------------------------------------------


@dataclass
class _Context:
    user: User
    user_key: bytes
    partner: User
    row: WishDeck
    partner_row: WishDeck | None
    tag_key: bytes
    state: dict

    @property
    def role(self) -> int:
        return 0 if self.user.id < self.partner.id else 1


def _card(card_key: str) -> cards.Card:
    try:
        return cards.deck().card(card_key)
    except LookupError:
        raise CardNotFound() from None


def _recent_changes(state: dict, now: datetime) -> list[float]:
    window = CHANGE_WINDOW.total_seconds()
    return [t for t in state["changes"] if now.timestamp() - t < window]


def _load(user: User, user_key: bytes, *, now: datetime) -> _Context:
    """Unlock the pair's tag key and the user's deck state, making either on first use."""
    partner = pairing.partner_of(user)
    if partner is None:
        raise NotPaired()
    ring = keyring.unlock(user=user, user_key=user_key)
    secret = _pair_secret(user, partner, ring, now=now)
    tag_key = crypto.wish_tag_key(secret, pair_id=user.pair_id)
    rows = {
        row.user_id: row
        for row in db.session.scalars(
            select(WishDeck).where(WishDeck.user_id.in_((user.id, partner.id)))
        )
        if row.pair_id == user.pair_id  # a deck left from an earlier pair is not this one
    }
    row = rows.get(user.id)
    if row is not None:
        state = _unwrap_state(user, user_key, row.state)
        _settle(state, now)
        return _Context(user, user_key, partner, row, rows.get(partner.id), tag_key, state)
    stale = db.session.get(WishDeck, user.id)
    if stale is not None:
        db.session.delete(stale)
        db.session.flush()
    state = {"answers": {}, "before": {}, "since": {}, "revealed": [], "changes": []}
    row = WishDeck(user_id=user.id, pair_id=user.pair_id, intimate=False)
    ctx = _Context(user, user_key, partner, row, rows.get(partner.id), tag_key, state)
    _store(ctx, now=now)
    db.session.add(row)
    db.session.commit()
    return ctx


def _store(ctx: _Context, *, now: datetime) -> None:
    """Wrap the state and write both tag sets: what counts now, and what counts later."""
    state, row = ctx.state, ctx.row
    _settle(state, now)
    later = dict(state["answers"])
    current = {**later, **state["before"]}
    row.tags = _tag_set(ctx.tag_key, current, ctx.role)
    if state["since"]:
        row.next_tags = _tag_set(ctx.tag_key, later, ctx.role)
        row.next_from = datetime.fromtimestamp(max(state["since"].values()), tz=now.tzinfo)
    else:
        row.next_tags, row.next_from = None, None
    row.state = _wrap_state(ctx)
    row.updated_at = now


def _settle(state: dict, now: datetime) -> None:
    """Forget the earlier answers of changes whose delay has passed: those count now."""
    for card_key, since in list(state["since"].items()):
        if since <= now.timestamp():
            del state["since"][card_key]
            state["before"].pop(card_key, None)


def _tag_set(tag_key: bytes, answers: dict[str, str], role: int) -> bytes:
    """Two tags for every card of the deck, sorted, so neither order nor count says anything."""
    tags = []
    for key in cards.deck().keys:
        tags.extend(crypto.wish_tags(tag_key, card=key, answer=answers.get(key), role=role))
    return b"".join(sorted(tags))


def _effective_tags(row: WishDeck, now: datetime) -> bytes:
    if row.next_from is not None and row.next_from <= now:
        return row.next_tags
    return row.tags


def _chunks(tags: bytes) -> set[bytes]:
    return {tags[i : i + _TAG] for i in range(0, len(tags), _TAG)}


def _wrap_state(ctx: _Context) -> bytes:
    state = ctx.state
    stored = {
        "answers": {k: v[0] for k, v in state["answers"].items()},
        "before": {k: v[0] for k, v in state["before"].items()},
        "since": {k: int(v) for k, v in state["since"].items()},
        "revealed": state["revealed"],
        "changes": [int(t) for t in state["changes"]],
    }
    plain = json.dumps(stored, separators=(",", ":"), sort_keys=True).encode("utf-8")
    plain += b" " * (-len(plain) % _STATE_BLOCK)
    return crypto.wrap(ctx.user_key, plain, purpose=_STATE_PURPOSE, user_id=ctx.user.id)


def _unwrap_state(user: User, user_key: bytes, blob: bytes) -> dict:
    stored = json.loads(crypto.unwrap(user_key, blob, purpose=_STATE_PURPOSE, user_id=user.id))
    try:
        return {
            "answers": {k: _LETTERS[v] for k, v in stored["answers"].items()},
            "before": {k: _LETTERS[v] for k, v in stored["before"].items()},
            "since": dict(stored["since"]),
            "revealed": list(stored["revealed"]),
            "changes": list(stored["changes"]),
        }
    except (KeyError, TypeError, AttributeError):
        raise DecryptionFailed() from None


def _view(ctx: _Context, *, now: datetime) -> Deck:
    state, row, partner_row = ctx.state, ctx.row, ctx.partner_row
    both = bool(row.intimate and partner_row is not None and partner_row.intimate)
    stamp = now.timestamp()
    waiting = {k: state["answers"][k] for k, since in state["since"].items() if since > stamp}
    return Deck(
        cards=cards.deck().cards(intimate=both),
        answers=dict(state["answers"]),
        waiting=waiting,
        intimate_mine=bool(row.intimate),
        intimate_both=both,
        changes_left=max(0, CHANGES_PER_WEEK - len(_recent_changes(state, now))),
    )


def _pair_secret(user: User, partner: User, ring: keyring.Keyring, *, now: datetime) -> bytes:
    """Open the pair's matching secret, making and sealing it first if nobody has yet."""
    row = db.session.get(WishKey, user.pair_id)
    if row is None:
        row = _seal_pair_secret(user, partner, ring, now=now)
    if {row.sender_id, row.recipient_id} != {user.id, partner.id}:
        raise DecryptionFailed()
    writer = user if row.sender_id == user.id else partner
    secret = envelopes.unseal(
        row.envelope,
        ring=ring,
        item_id=row.envelope_id,
        pair_id=row.pair_id,
        kind="wishkey",
        writer=writer,
        reader=partner if writer is user else user,
        at=row.created_at,
        now=now,
    )
    if len(secret) != crypto.KEY_BYTES:
        raise DecryptionFailed()
    return secret


def _seal_pair_secret(user: User, partner: User, ring: keyring.Keyring, *, now: datetime):
    created = envelopes.whole_second(now)
    envelope_id = uuid.uuid4().hex
    row = WishKey(
        pair_id=user.pair_id,
        envelope_id=envelope_id,
        sender_id=user.id,
        recipient_id=partner.id,
        created_at=created,
        envelope=envelopes.seal(
            ring=ring,
            reader=partner,
            item_id=envelope_id,
            pair_id=user.pair_id,
            kind="wishkey",
            body=crypto.new_key(),
            at=created,
            now=now,
        ),
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # the partner made one at the same moment: use theirs
        db.session.rollback()
        row = db.session.scalar(select(WishKey).where(WishKey.pair_id == user.pair_id))
    return row
