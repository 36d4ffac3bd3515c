"""Forgot password: emailed reset links, recovery with the recovery key, or a fresh start.

With the recovery key the user key is kept, so every note stays readable. Without it the account
gets fresh keys and the old ones are retired, not destroyed: if the old password or recovery key
turns up, `restore_retired` makes the earlier notes open again (DESIGN §4).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from wishnotes import accounts, crypto, keyring_store, keysessions, logins
from wishnotes.errors import (
    DecryptionFailed,
    InvalidInput,
    ResetLinkExpired,
    ResetLinkInvalid,
    ResetLinkUsed,
)
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.kdf import KdfRunner
from wishnotes.models import PasswordReset, RetiredKeys, User

RESET_TTL = timedelta(hours=1)
PURPOSE_RETIRED = "retired-user-key"
_TOKEN_BYTES = 32
_TOKEN_MAX_LENGTH = 100


@dataclass(frozen=True, repr=False)
class Recovered(accounts.Unlocked):
    """The user after a reset, unlocked, with the new recovery key to show once."""

    recovery_key: bytes


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def request_reset(*, email: str, now: datetime) -> tuple[User, int] | None:
    """Record a reset request for the account of `email`; None (and no hint) when there is none.

    Returns the user and the request's id. No token exists yet: `mint_reset_token` makes it
    when the email is handed to the relay, so the link never rests in the outbox. The caller
    queues the email in the same transaction and commits.
    """
    try:
        normalized = accounts.normalize_email(email)
    except InvalidInput:
        return None
    user = db.session.scalar(select(User).where(User.email == normalized))
    if user is None:
        return None
    # Only the newest link works: asking again withdraws the older ones.
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    request = PasswordReset(
        user_id=user.id, token_hash=None, created_at=now, expires_at=now + RESET_TTL
    )
    db.session.add(request)
    db.session.flush()
    return user, request.id


def mint_reset_token(*, user_id: int, now: datetime) -> str | None:
    """Give the user's live reset request a new token, store only its hash, and commit.

    Called as the email goes to the relay. Returns None when no request is live (used, expired
    or withdrawn). A retried email gets a new token, and the older link stops working: only
    the newest email's link opens the reset page.
    """
    request_id = db.session.scalar(
        select(PasswordReset.id)
        .where(
            PasswordReset.user_id == user_id,
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
        )
        .order_by(PasswordReset.id.desc())
        .limit(1)
    )
    if request_id is None:
        db.session.commit()
        return None
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == request_id)
        .values(token_hash=_hash(token))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return token


def find_reset(*, token: str, now: datetime) -> PasswordReset:
    """Return the reset a token names if it can still be used, or raise why not."""
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        raise ResetLinkInvalid()
    reset = db.session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _hash(token)))
    if reset is None:
        raise ResetLinkInvalid()
    if reset.used_at is not None:
        raise ResetLinkUsed()
    if reset.expires_at <= now:
        raise ResetLinkExpired()
    return reset


def _use(reset: PasswordReset, now: datetime) -> User:
    claimed = db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise ResetLinkUsed()
    return db.session.get(User, reset.user_id)


def _end_every_session(user: User) -> None:
    logins.end_all(user_id=user.id)
    keysessions.close_all(user_id=user.id)


def recover_with_key(
    *, token: str, recovery_key_text: str, new_password: str, kdf: KdfRunner, now: datetime
) -> Recovered:
    """Set a new password using the recovery key; every note stays readable."""
    reset = find_reset(token=token, now=now)
    user = db.session.get(User, reset.user_id)
    accounts.check_password(new_password, email=user.email)
    try:
        recovery_key = crypto.parse_recovery_key(recovery_key_text)
        kek = crypto.recovery_kek(recovery_key, user_id=user.id, pepper=kdf.pepper)
        user_key = crypto.unwrap(
            kek, user.uk_by_recovery, purpose=accounts.PURPOSE_UK_RECOVERY, user_id=user.id
        )
    except (ValueError, DecryptionFailed):
        raise InvalidInput(
            _l("That recovery key does not match this account. Check it and try again."),
            field="recovery_key",
        ) from None
    user = _use(reset, now)
    accounts.set_password(user=user, user_key=user_key, password=new_password, kdf=kdf)
    new_key = accounts.set_recovery_key(user=user, user_key=user_key, pepper=kdf.pepper)
    _end_every_session(user)
    db.session.commit()
    return Recovered(user=user, user_key=user_key, recovery_key=new_key)


def reset_with_fresh_keys(
    *, token: str, new_password: str, understood: bool, kdf: KdfRunner, now: datetime
) -> Recovered:
    """Start again with new keys; the old ones are retired so earlier notes can reopen later."""
    reset = find_reset(token=token, now=now)
    user = db.session.get(User, reset.user_id)
    accounts.check_password(new_password, email=user.email)
    if not understood:
        raise InvalidInput(
            _l("Please confirm that you understand earlier notes stay locked for now."),
            field="understood",
        )
    user = _use(reset, now)
    db.session.add(
        RetiredKeys(
            user_id=user.id,
            retired_at=now,
            kdf_salt=user.kdf_salt,
            kdf_memory_kib=user.kdf_memory_kib,
            kdf_iterations=user.kdf_iterations,
            kdf_lanes=user.kdf_lanes,
            auth_digest=user.auth_digest,
            uk_by_password=user.uk_by_password,
            uk_by_recovery=user.uk_by_recovery,
            private_keys=user.private_keys,
            hpke_public=user.hpke_public,
            sign_public=user.sign_public,
            key_id=user.key_id,
        )
    )
    user_key = crypto.new_key()
    keys = crypto.generate_user_keys()
    public = keys.public()
    user.hpke_public, user.sign_public, user.key_id = (
        public.hpke_public,
        public.sign_public,
        public.key_id,
    )
    user.private_keys = crypto.wrap(
        user_key,
        crypto.serialize_private(keys),
        purpose=accounts.PURPOSE_PRIVATE_KEYS,
        user_id=user.id,
    )
    # The old pins are sealed under the old user key. The new keyring trusts nobody yet: a
    # partner's keys are trusted again only after the two compare safety numbers.
    user.keyring = keyring_store.empty(user_key=user_key, user_id=user.id, now=now)
    accounts.set_password(user=user, user_key=user_key, password=new_password, kdf=kdf)
    new_key = accounts.set_recovery_key(user=user, user_key=user_key, pepper=kdf.pepper)
    _end_every_session(user)
    db.session.commit()
    return Recovered(user=user, user_key=user_key, recovery_key=new_key)


def purge_finished_resets(*, now: datetime) -> int:
    """Delete reset links that can no longer be used (used, replaced, expired); return how many."""
    count = db.session.execute(
        delete(PasswordReset).where(
            (PasswordReset.used_at.is_not(None)) | (PasswordReset.expires_at <= now)
        )
    ).rowcount
    db.session.commit()
    return count


def locked_retired(user: User) -> list[RetiredKeys]:
    """Return the user's retired key sets that are still locked, newest first."""
    return list(
        db.session.scalars(
            select(RetiredKeys)
            .where(RetiredKeys.user_id == user.id, RetiredKeys.uk_by_current.is_(None))
            .order_by(RetiredKeys.retired_at.desc())
        )
    )


def restore_retired(
    *, user: User, user_key: bytes, secret: str, kdf: KdfRunner, now: datetime
) -> int:
    """Reopen retired keys with an old password or old recovery key; return how many opened."""
    opened = 0
    for retired in locked_retired(user):
        old_key = _open_retired(retired, secret=secret, kdf=kdf)
        if old_key is None:
            continue
        retired.uk_by_current = crypto.wrap(
            user_key, old_key, purpose=PURPOSE_RETIRED, user_id=user.id
        )
        retired.restored_at = now
        opened += 1
    if not opened:
        raise InvalidInput(
            _l("That does not open any earlier keys. Try another old password or recovery key."),
            field="secret",
        )
    db.session.commit()
    return opened


def _open_retired(retired: RetiredKeys, *, secret: str, kdf: KdfRunner) -> bytes | None:
    """Return the retired user key if `secret` is its old recovery key or old password."""
    try:
        recovery_key = crypto.parse_recovery_key(secret)
    except ValueError:
        recovery_key = None
    if recovery_key is not None:
        kek = crypto.recovery_kek(recovery_key, user_id=retired.user_id, pepper=kdf.pepper)
        try:
            return crypto.unwrap(
                kek,
                retired.uk_by_recovery,
                purpose=accounts.PURPOSE_UK_RECOVERY,
                user_id=retired.user_id,
            )
        except DecryptionFailed:
            pass
    params = accounts.stored_kdf_params(
        memory_kib=retired.kdf_memory_kib,
        iterations=retired.kdf_iterations,
        lanes=retired.kdf_lanes,
    )
    auth_value, kek = kdf.derive(secret, salt=retired.kdf_salt, params=params)
    if not crypto.auth_matches(auth_value, retired.auth_digest):
        return None
    return crypto.unwrap(
        kek, retired.uk_by_password, purpose=accounts.PURPOSE_UK_PASSWORD, user_id=retired.user_id
    )


def retired_private_keys(*, user: User, user_key: bytes, key_id: str) -> crypto.UserKeys | None:
    """Return the restored private keys that had `key_id`, or None if unknown or still locked."""
    retired = db.session.scalar(
        select(RetiredKeys).where(
            RetiredKeys.user_id == user.id,
            RetiredKeys.key_id == key_id,
            RetiredKeys.uk_by_current.is_not(None),
        )
    )
    if retired is None:
        return None
    old_key = crypto.unwrap(
        user_key, retired.uk_by_current, purpose=PURPOSE_RETIRED, user_id=user.id
    )
    blob = crypto.unwrap(
        old_key, retired.private_keys, purpose=accounts.PURPOSE_PRIVATE_KEYS, user_id=user.id
    )
    return crypto.deserialize_private(blob)
