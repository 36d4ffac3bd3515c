"""Pairing: invite links, joining a partner, and ending a pair."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from wishnotes import crypto, keyring, locks, submissions
from wishnotes.errors import (
    AlreadyPaired,
    InviteExpired,
    InviteInvalid,
    InviteKeysChanged,
    InviteRevoked,
    InviterPaired,
    InviteUsed,
    NotPaired,
    SelfInvite,
)
from wishnotes.extensions import db
from wishnotes.models import (
    Agreement,
    Invite,
    Note,
    Pair,
    Place,
    PlaceTurn,
    RitualItem,
    User,
    WishDeck,
    WishKey,
)

INVITE_TTL = timedelta(hours=48)
_TOKEN_BYTES = 24  # 192 bits
_TOKEN_MAX_LENGTH = 100


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def live_invite(*, user: User, now: datetime) -> Invite | None:
    """Return the user's invite that can still be used, if any."""
    return db.session.scalar(
        select(Invite).where(
            Invite.inviter_id == user.id,
            Invite.used_at.is_(None),
            Invite.revoked_at.is_(None),
            Invite.expires_at > now,
        )
    )


def create_invite(
    *,
    user: User,
    user_key: bytes,
    now: datetime,
    submission_key: str | None = None,
    secret: bytes = b"",
) -> str:
    """Make a new single-use invite token (withdrawing any earlier one) and return it.

    The token is the secret that authenticates both partners' keys: the invite row gets a MAC
    of the inviter's public keys under a key derived from it, and the inviter's keyring keeps
    that key to check the joiner's keys later. Only the token's hash is stored in clear.

    With a form's `submission_key` (and the server `secret`), the token is derived from the
    key, so a second post of the same form finds the invite the first one made (its token
    hash is unique) and shows the same link again, instead of making a second one that
    withdraws the first. The key itself is not stored.
    """
    if user.pair_id is not None:
        raise AlreadyPaired()
    once = submissions.checked(submission_key)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    if once is not None and secret:
        derived = _token_from_key(once, user=user, secret=secret)
        earlier = db.session.scalar(select(Invite.id).where(Invite.token_hash == _hash(derived)))
        if earlier is None:
            token = derived
        elif _made_by(user, derived, now=now):
            return derived
        # else: the form made a link that was withdrawn or used since; this post makes a new one
    ring = keyring.unlock(user=user, user_key=user_key)
    _revoke_live(user=user, now=now)
    invite = Invite(
        inviter_id=user.id, token_hash=_hash(token), created_at=now, expires_at=now + INVITE_TTL
    )
    db.session.add(invite)
    try:
        db.session.flush()  # the id is bound into the MAC
    except IntegrityError:  # the same form, posted twice at once: the other post made it
        db.session.rollback()
        if _made_by(user, token, now=now):
            return token
        raise
    key = crypto.pairing_key(token)
    invite.inviter_mac = crypto.inviter_mac(
        key, invite_id=invite.id, user_id=user.id, keys=ring.own_public
    )
    ring.remember_invite(invite_id=invite.id, key=key, now=now)
    db.session.commit()
    return token
    return token


def _token_from_key(key: str, *, user: User, secret: bytes) -> str:
    mac = hmac.new(secret, f"invite-token:{user.id}:{key}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def _made_by(user: User, token: str, *, now: datetime) -> bool:
    """Return whether `token` names a live invite of `user`."""
    return (
        db.session.scalar(
            select(Invite.id).where(
                Invite.token_hash == _hash(token),
                Invite.inviter_id == user.id,
                Invite.used_at.is_(None),
                Invite.revoked_at.is_(None),
                Invite.expires_at > now,
            )
        )
        is not None
    )


def revoke_invite(*, user: User, now: datetime) -> bool:
    """Withdraw the user's live invite; return whether there was one."""
    revoked = _revoke_live(user=user, now=now)
    db.session.commit()
    return revoked > 0


def _revoke_live(*, user: User, now: datetime) -> int:
    return db.session.execute(
        update(Invite)
        .where(Invite.inviter_id == user.id, Invite.used_at.is_(None), Invite.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount


def find_invite(*, token: str, now: datetime) -> Invite:
    """Return the invite a token names if it can still be accepted, or raise why not."""
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        raise InviteInvalid()
    invite = db.session.scalar(select(Invite).where(Invite.token_hash == _hash(token)))
    if invite is None:
        raise InviteInvalid()
    if invite.used_at is not None:
        raise InviteUsed()
    if invite.revoked_at is not None:
        raise InviteRevoked()
    if invite.expires_at <= now:
        raise InviteExpired()
    if invite.inviter.pair_id is not None:
        raise InviterPaired()
    return invite


def accept_invite(*, user: User, token: str, now: datetime, user_key: bytes) -> Pair:
    """Pair the user with the invite's sender; the invite is used up.

    Both partners' keys are authenticated with the token, which reached the joiner outside the
    server: the joiner checks the inviter's MAC before pinning the inviter's keys (in the same
    transaction), and leaves their own MAC over their keys and the pair id for the inviter.
    InviteKeysChanged if the inviter's keys are not the ones the token vouches for.
    """
    invite = find_invite(token=token, now=now)
    inviter = invite.inviter
    if inviter.id == user.id:
        raise SelfInvite()
    # Both rows locked in id order before anything changes: two people accepting each other's
    # invites at once wait for each other here instead of deadlocking further down.
    locked = locks.lock_users([user.id, inviter.id])
    if (pair := _paired_together(user, inviter)) is not None:
        return pair
    if user.pair_id is not None:
        db.session.rollback()
        raise AlreadyPaired()
    if inviter.id not in locked or inviter.pair_id is not None:
        db.session.rollback()
        raise InviterPaired()
    ring = keyring.unlock(user=user, user_key=user_key)
    key = crypto.pairing_key(token)
    inviter_keys = keyring.public_keys(inviter)
    if inviter_keys is None or not crypto.macs_match(
        crypto.inviter_mac(key, invite_id=invite.id, user_id=inviter.id, keys=inviter_keys),
        invite.inviter_mac,
    ):
        raise InviteKeysChanged()

    # Claim the invite and both users with guarded updates, so two racing accepts cannot both win.
    claimed = db.session.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.used_at.is_(None), Invite.revoked_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        if (pair := _paired_together(user, inviter, refresh=True)) is not None:
            return pair
        raise InviteUsed()
    pair = Pair(
        first_user_id=inviter.id, second_user_id=user.id, created_at=now, invite_id=invite.id
    )
    db.session.add(pair)
    db.session.flush()
    pair.joiner_mac = crypto.joiner_mac(
        key, invite_id=invite.id, pair_id=pair.id, user_id=user.id, keys=ring.own_public
    )
    joined = db.session.execute(
        update(User)
        .where(User.id.in_([inviter.id, user.id]), User.pair_id.is_(None))
        .values(pair_id=pair.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if joined != 2:
        db.session.rollback()
        if (pair := _paired_together(user, inviter, refresh=True)) is not None:
            return pair
        raise InviterPaired() if user.pair_id is None else AlreadyPaired()
    _revoke_live(user=user, now=now)  # the joiner's own invite is no longer needed
    ring.pin(pair_id=pair.id, partner=inviter, keys=inviter_keys, how="invite", now=now)
    db.session.commit()
    db.session.refresh(user)
    db.session.refresh(inviter)
    return pair


def _paired_together(user: User, inviter: User, *, refresh: bool = False) -> Pair | None:
    """Return the pair of the two if they are one already: each accepted the other's invite at
    the same moment, and the other accept won. That is the outcome both wanted."""
    if refresh:
        db.session.refresh(user)
        db.session.refresh(inviter)
    if user.pair_id is None or inviter.pair_id != user.pair_id:
        return None
    pair = db.session.get(Pair, user.pair_id)
    db.session.commit()  # ends the transaction, and with it the row locks
    return pair


def partner_of(user: User) -> User | None:
    """Return the other member of the user's pair, if paired."""
    if user.pair_id is None:
        return None
    # By primary keys, so a page whose user was loaded with the partner reads nothing here.
    pair = db.session.get(Pair, user.pair_id)
    if pair is None:
        return None
    other_id = pair.second_user_id if pair.first_user_id == user.id else pair.first_user_id
    partner = db.session.get(User, other_id) if other_id is not None else None
    return partner if partner is not None and partner.pair_id == user.pair_id else None


def unpair(
    *,
    user: User,
    now: datetime,
    delete_my_notes: bool = False,
    delete_my_practices: bool = False,
) -> Pair:
    """End the user's pair for both partners, deleting the notes the user wrote if they chose so.

    Each partner decides for the notes they wrote; the other one can do so later from their
    past notes (notes.delete_past_written).
    """
    partner = partner_of(user)
    locks.lock_users([user.id, partner.id if partner else None])
    if user.pair_id is None:  # the partner ended it (or left) a moment ago
        db.session.rollback()
        raise NotPaired()
    pair = db.session.get(Pair, user.pair_id)
    pair.ended_at = now
    if delete_my_notes:
        db.session.execute(delete(Note).where(Note.pair_id == pair.id, Note.sender_id == user.id))
    if delete_my_practices:
        _delete_practices_written(user_id=user.id, pair_id=pair.id)
    forget_wishes(pair_id=pair.id)
    db.session.execute(
        update(User)
        .where(User.pair_id == pair.id)
        .values(pair_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(user)
    return pair


def _delete_practices_written(*, user_id: int, pair_id: int) -> None:
    """Delete what the user wrote in the pair's practices (rituals, places, agreements).

    A place they started keeps the turns the partner wrote, without its name.
    """
    db.session.execute(
        delete(RitualItem).where(RitualItem.pair_id == pair_id, RitualItem.author_id == user_id)
    )
    db.session.execute(
        delete(PlaceTurn).where(PlaceTurn.pair_id == pair_id, PlaceTurn.writer_id == user_id)
    )
    db.session.execute(
        update(Place)
        .where(Place.pair_id == pair_id, Place.started_by_id == user_id)
        .values(name_envelope=None)
    )
    db.session.execute(
        delete(Agreement).where(Agreement.pair_id == pair_id, Agreement.proposer_id == user_id)
    )


def purge_finished_invites(*, now: datetime) -> int:
    """Delete invites that can no longer be accepted (used, withdrawn, expired); return how many."""
    count = db.session.execute(
        delete(Invite).where(
            (Invite.used_at.is_not(None))
            | (Invite.revoked_at.is_not(None))
            | (Invite.expires_at <= now)
        )
    ).rowcount
    db.session.commit()
    return count


def forget_wishes(*, pair_id: int) -> None:
    """Delete both partners' wish-card answers and the pair's matching secret (at the pair's end).

    Part of the caller's transaction: nothing of what either wanted outlives the pair.
    """
    db.session.execute(delete(WishDeck).where(WishDeck.pair_id == pair_id))
    db.session.execute(delete(WishKey).where(WishKey.pair_id == pair_id))


def ended_pair(user: User) -> Pair | None:
    """Return the user's most recent pair if it has ended and they have not paired again."""
    if user.pair_id is not None:
        return None
    latest = db.session.scalar(
        select(Pair)
        .where((Pair.first_user_id == user.id) | (Pair.second_user_id == user.id))
        # SQLite can give a deleted user's id to a new account; older pairs are not theirs.
        .where(Pair.created_at >= user.created_at)
        .order_by(Pair.created_at.desc(), Pair.id.desc())
        .limit(1)
    )
    return latest if latest is not None and latest.ended_at is not None else None


def had_past_pair(user: User) -> bool:
    """Return whether the user was ever in a pair that has ended (so has past notes to find)."""
    return (
        db.session.scalar(
            select(Pair.id)
            .where((Pair.first_user_id == user.id) | (Pair.second_user_id == user.id))
            .where(Pair.created_at >= user.created_at, Pair.ended_at.is_not(None))
            .limit(1)
        )
        is not None
    )


def former_partner(user: User, pair: Pair) -> User | None:
    """Return the other member of an ended pair, if their account still exists."""
    other_id = pair.second_user_id if pair.first_user_id == user.id else pair.first_user_id
    return None if other_id is None else db.session.get(User, other_id)
