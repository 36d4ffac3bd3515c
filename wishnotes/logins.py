"""Logins: one row per signed-in browser, so that signing out really ends it (DESIGN §4).

The session cookie names a login by a random token and the remember-me cookie adds a second,
rotating secret; the database keeps only their SHA-256, so a copy of it names no cookie. Deleting
a row ends that login at once: its session cookie, its remember-me cookie and (by cascade) the
key sessions it unlocked. Nothing about the network is kept: a login is described by a coarse
device label (browser and system) and the day it was last seen.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.orm import aliased, defer

from wishnotes.extensions import db
from wishnotes.models import KeySession, Login, Pair, User

_TOKEN_BYTES = 32
_TOKEN_MAX_LENGTH = 100
# A rotated remember-me secret still works this long: tabs restored together after a restart
# all send the old one, and only the first of them gets the new one.
ROTATION_GRACE = timedelta(minutes=1)
DEVICE_MAX = 60
# A partner's row comes with every page; what only its owner can use stays in the database.
_PARTNER_SECRETS = (
    "kdf_salt",
    "auth_digest",
    "uk_by_password",
    "uk_by_recovery",
    "private_keys",
    "keyring",
)

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bSafari/")),
)
# What a login is called when the User-Agent names no browser we know (the settings page
# translates it when it shows the list: see wishnotes.web.logins.device_name).
UNKNOWN_BROWSER = "A browser"
_SYSTEMS = (
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


@dataclass(frozen=True, repr=False)
class Opened:
    """A new login and the cookie values that name it (shown to the browser once)."""

    login: Login
    token: str
    remember_cookie: str | None


@dataclass(frozen=True, repr=False)
class Resumed:
    """A login found from a cookie, with its user; `remember_cookie` is set when it rotated."""

    login: Login
    user: User
    token: str
    remember_cookie: str | None = None


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def _new_secret() -> str:
    # URL-safe base64 never contains ".", which separates the two parts of a remember-me value.
    return secrets.token_urlsafe(_TOKEN_BYTES)


def device_label(user_agent: str | None) -> str:
    """Return "Browser on System" for a User-Agent string; nothing finer is kept."""
    text = (user_agent or "")[:1000]
    browser = next((name for name, pattern in _BROWSERS if pattern.search(text)), UNKNOWN_BROWSER)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), None)
    label = f"{browser} on {system}" if system else browser
    return label[:DEVICE_MAX]


def _lifetime(*, remember: bool, idle: timedelta, remembered: timedelta) -> timedelta:
    return remembered if remember else idle


def open_login(
    *,
    user: User,
    device: str,
    remember: bool,
    now: datetime,
    idle: timedelta,
    remembered: timedelta,
) -> Opened:
    """Start a login for `user`; return it with its session token (and remember-me value)."""
    token = _new_secret()
    secret = _new_secret() if remember else None
    login = Login(
        user_id=user.id,
        token_hash=_hash(token),
        remember_hash=_hash(secret) if secret else None,
        remember=remember,
        device=(device or UNKNOWN_BROWSER)[:DEVICE_MAX],
        created_at=now,
        last_seen_on=now.date(),
        expires_at=now + _lifetime(remember=remember, idle=idle, remembered=remembered),
    )
    db.session.add(login)
    db.session.commit()
    return Opened(login=login, token=token, remember_cookie=f"{token}.{secret}" if secret else None)


def _find(token: str, now: datetime, key_session_id: str | None) -> tuple[Login, User] | None:
    if not token or len(token) > _TOKEN_MAX_LENGTH:
        return None
    parameters = {"token_hash": _hash(token)}
    if key_session_id is not None:
        parameters["key_session_id"] = key_session_id
    query = _login_query(with_key_session=key_session_id is not None)
    row = db.session.execute(query, parameters).first()
    if row is None or row[0].expires_at <= now:
        return None
    # The identity map holds objects weakly: keep the others alive as long as this session.
    db.session.info["wishnotes.loaded_with_login"] = tuple(row)
    return row[0], row[1]


@functools.cache
def _login_query(*, with_key_session: bool):
    """The statement of `_find`, built once per process (every signed-in request runs it).

    One round trip for the login, its user and what most pages use next: the user's pair,
    their partner (without the partner's wrapped secrets) and the key session the browser's
    key cookie names. The services then find those in the identity map (db.session.get).
    """
    partner = aliased(User)
    query = (
        select(Login, User, Pair, partner)
        .join(User, User.id == Login.user_id)
        .outerjoin(Pair, Pair.id == User.pair_id)
        .outerjoin(partner, and_(partner.pair_id == User.pair_id, partner.id != User.id))
        .where(Login.token_hash == bindparam("token_hash"))
        .options(*(defer(getattr(partner, name)) for name in _PARTNER_SECRETS))
    )
    if with_key_session:
        query = query.add_columns(KeySession).outerjoin(
            KeySession,
            and_(KeySession.id == bindparam("key_session_id"), KeySession.user_id == User.id),
        )
    return query


def resume(
    *,
    token: str,
    now: datetime,
    idle: timedelta,
    remembered: timedelta,
    key_session_id: str | None = None,
) -> Resumed | None:
    """Return the live login a session cookie names, or None; note the day it was seen.

    `key_session_id` (keysessions.row_id of the key cookie) is loaded in the same query.
    """
    found = _find(token, now, key_session_id)
    if found is None:
        return None
    login, user = found
    if login.last_seen_on != now.date():
        # At most one write a day per login: the day shown in settings, and the expiry moved on.
        login.last_seen_on = now.date()
        login.expires_at = now + _lifetime(
            remember=login.remember, idle=idle, remembered=remembered
        )
        db.session.commit()
    return Resumed(login=login, user=user, token=token)


def resume_remembered(
    *, cookie_value: str, now: datetime, idle: timedelta, remembered: timedelta
) -> Resumed | None:
    """Return the login a remember-me value names, rotating its secret; None if it is not live.

    A secret that was rotated away longer ago than ROTATION_GRACE means the cookie was copied
    (or is very old): the login ends, for the copy and for the browser that still holds it.
    """
    token, _, secret = (cookie_value or "").partition(".")
    if not secret or len(secret) > _TOKEN_MAX_LENGTH:
        return None
    found = _find(token, now, None)
    if found is None:
        return None
    login, user = found
    digest = _hash(secret)
    if login.remember_hash is not None and hmac.compare_digest(digest, login.remember_hash):
        fresh = _new_secret()
        login.previous_remember_hash = login.remember_hash
        login.remember_hash = _hash(fresh)
        login.rotated_at = now
        login.last_seen_on = now.date()
        login.expires_at = now + remembered
        db.session.commit()
        return Resumed(login=login, user=user, token=token, remember_cookie=f"{token}.{fresh}")
    if (
        login.previous_remember_hash is not None
        and hmac.compare_digest(digest, login.previous_remember_hash)
        and login.rotated_at is not None
        and now - login.rotated_at <= ROTATION_GRACE
    ):
        return Resumed(login=login, user=user, token=token)
    db.session.delete(login)
    db.session.commit()
    return None


def of_user(*, user: User, now: datetime) -> list[Login]:
    """Return the user's live logins, the most recently seen first."""
    return list(
        db.session.scalars(
            select(Login)
            .where(Login.user_id == user.id, Login.expires_at > now)
            .order_by(Login.last_seen_on.desc(), Login.created_at.desc(), Login.id.desc())
        )
    )


def end(*, user: User, login_id: int) -> bool:
    """End one of the user's logins; return False when the user has no such login."""
    ended = db.session.execute(
        delete(Login).where(Login.id == login_id, Login.user_id == user.id)
    ).rowcount
    db.session.commit()
    return ended == 1


def end_all(*, user_id: int, keep_login_id: int | None = None) -> int:
    """End every login of a user (but `keep_login_id`); return how many ended.

    The caller commits, so this can share a transaction with a password change.
    """
    query = delete(Login).where(Login.user_id == user_id)
    if keep_login_id is not None:
        query = query.where(Login.id != keep_login_id)
    return db.session.execute(query).rowcount


def end_others(*, user: User, login_id: int) -> int:
    """End every login of the user but `login_id` ("sign out everywhere else")."""
    ended = end_all(user_id=user.id, keep_login_id=login_id)
    db.session.commit()
    return ended


def purge_expired(*, now: datetime) -> int:
    """Delete logins past their expiry; return how many."""
    count = db.session.execute(delete(Login).where(Login.expires_at <= now)).rowcount
    db.session.commit()
    return count
