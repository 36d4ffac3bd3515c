"""Split-key sessions: the user key wrapped under a key only the browser's cookie holds.

The database row alone opens nothing, and neither does the cookie alone (DESIGN §4).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_

from wishnotes import crypto
from wishnotes.errors import DecryptionFailed, Locked
from wishnotes.extensions import db
from wishnotes.models import KeySession, User

COOKIE_NAME = "wn_keys"
PURPOSE = "key-session"
PURPOSE_KIT_CHECK = "recovery-kit-check"
_SID_BYTES = 16
# Writing last_used_at on every request would turn each page view into a write.
_TOUCH_EVERY = timedelta(seconds=60)


def _row_id(sid: bytes) -> str:
    return hashlib.sha256(b"wishnotes key-session\x00" + sid).hexdigest()


def _split(cookie_value: str | None) -> tuple[bytes, bytes]:
    try:
        raw = base64.urlsafe_b64decode((cookie_value or "").encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise Locked() from None
    if len(raw) != _SID_BYTES + 32:
        raise Locked()
    return raw[:_SID_BYTES], raw[_SID_BYTES:]


def row_id(cookie_value: str | None) -> str | None:
    """Return the id of the row a cookie names, or None for a missing or malformed cookie."""
    try:
        sid, _ = _split(cookie_value)
    except Locked:
        return None
    return _row_id(sid)


def open_session(*, user: User, user_key: bytes, login_id: int, now: datetime) -> str:
    """Store the user key wrapped under a new session key; return the cookie value.

    The key session belongs to the login that opened it: ending the login ends it too.
    """
    sid = secrets.token_bytes(_SID_BYTES)
    session_key = crypto.new_key()
    db.session.add(
        KeySession(
            id=_row_id(sid),
            user_id=user.id,
            login_id=login_id,
            wrapped_user_key=crypto.wrap(session_key, user_key, purpose=PURPOSE, user_id=user.id),
            created_at=now,
            last_used_at=now,
        )
    )
    db.session.commit()
    return base64.urlsafe_b64encode(sid + session_key).decode("ascii")


def unlock(
    *,
    cookie_value: str | None,
    user: User,
    login_id: int,
    now: datetime,
    idle: timedelta,
    absolute: timedelta,
) -> bytes:
    """Return the user key for this cookie, or raise Locked (missing, expired, foreign, forged).

    A key cookie only works together with the login that opened it, never with another one.
    """
    sid, session_key = _split(cookie_value)
    row = db.session.get(KeySession, _row_id(sid))
    if row is None or row.user_id != user.id or row.login_id != login_id:
        raise Locked()
    if now - row.last_used_at > idle or now - row.created_at > absolute:
        db.session.delete(row)
        db.session.commit()
        raise Locked()
    try:
        user_key = crypto.unwrap(
            session_key, row.wrapped_user_key, purpose=PURPOSE, user_id=user.id
        )
    except DecryptionFailed:
        raise Locked() from None
    if now - row.last_used_at > _TOUCH_EVERY:
        row.last_used_at = now
        db.session.commit()
    return user_key


def seconds_left(*, cookie_value: str | None, now: datetime, idle: timedelta) -> int | None:
    """Return how long this key session stays unlocked without activity, or None if locked."""
    try:
        sid, _ = _split(cookie_value)
    except Locked:
        return None
    row = db.session.get(KeySession, _row_id(sid))
    if row is None:
        return None
    return max(0, int((row.last_used_at + idle - now).total_seconds()))


def close_session(*, cookie_value: str | None) -> None:
    """Delete the key session this cookie names, if any."""
    try:
        sid, _ = _split(cookie_value)
    except Locked:
        return
    db.session.execute(delete(KeySession).where(KeySession.id == _row_id(sid)))
    db.session.commit()


def close_all(*, user_id: int, keep_cookie: str | None = None) -> int:
    """Delete every key session of a user (but the one `keep_cookie` names); return how many."""
    query = delete(KeySession).where(KeySession.user_id == user_id)
    if keep_cookie:
        try:
            sid, _ = _split(keep_cookie)
            query = query.where(KeySession.id != _row_id(sid))
        except Locked:
            pass
    count = db.session.execute(query).rowcount
    db.session.commit()
    return count


def purge_expired(*, now: datetime, idle: timedelta, absolute: timedelta) -> int:
    """Delete key sessions past either timeout; return how many."""
    count = db.session.execute(
        delete(KeySession).where(
            or_(KeySession.last_used_at < now - idle, KeySession.created_at < now - absolute)
        )
    ).rowcount
    db.session.commit()
    return count


def keep_kit_check(*, cookie_value: str | None, user: User, check: bytes | None) -> None:
    """Keep what the recovery-kit check needs, sealed under this cookie's session key.

    Only this browser can use it, and the database alone does not show it; None drops it.
    Locked if the cookie names no key session of this user.
    """
    sid, session_key = _split(cookie_value)
    row = db.session.get(KeySession, _row_id(sid))
    if row is None or row.user_id != user.id:
        raise Locked()
    row.kit_check = (
        None
        if check is None
        else crypto.wrap(session_key, check, purpose=PURPOSE_KIT_CHECK, user_id=user.id)
    )
    db.session.commit()


def kit_check(*, cookie_value: str | None, user: User) -> bytes | None:
    """Return the recovery-kit check kept in this cookie's key session, if there is one."""
    try:
        sid, session_key = _split(cookie_value)
    except Locked:
        return None
    row = db.session.get(KeySession, _row_id(sid))
    if row is None or row.user_id != user.id or row.kit_check is None:
        return None
    try:
        return crypto.unwrap(session_key, row.kit_check, purpose=PURPOSE_KIT_CHECK, user_id=user.id)
    except DecryptionFailed:
        return None
