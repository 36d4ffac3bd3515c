"""The request's view of its key session: the split-key cookie and the unlocked user key."""

from __future__ import annotations

from flask import Response, current_app, g, request
from flask_login import current_user

from wishnotes import keyring, keysessions
from wishnotes.clock import now
from wishnotes.errors import DecryptionFailed, Locked
from wishnotes.kdf import KdfRunner
from wishnotes.web import logins

# Outlives sign-outs and key sessions on purpose: it is what a database restore cannot undo.
RING_COOKIE = "wn_ring"
_RING_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie


def kdf() -> KdfRunner:
    """Return the app's capped Argon2id runner (pepper and target cost)."""
    return current_app.extensions["wishnotes.kdf"]


def user_key(*, allow_rollback: bool = False) -> bytes:
    """Return the current user's key for this request, or raise Locked.

    For a paired user, KeyringRolledBack (a KeyChanged) if the keyring in the database is older
    than the newest one this browser has seen; only the safety-number pages, which let the
    person compare numbers and trust again, pass `allow_rollback`.
    """
    if "user_key" not in g:
        login_id = logins.current_id()
        if login_id is None:
            raise Locked()
        g.user_key = keysessions.unlock(
            cookie_value=request.cookies.get(keysessions.COOKIE_NAME),
            user=current_user,
            login_id=login_id,
            now=now(),
            idle=current_app.config["KEY_SESSION_IDLE"],
            absolute=current_app.config["KEY_SESSION_ABSOLUTE"],
        )
    if not allow_rollback and current_user.pair_id is not None and "keyring_checked" not in g:
        keyring.check_mark(user=current_user, user_key=g.user_key, mark=keyring_mark())
        g.keyring_checked = True
    return g.user_key


def keyring_mark() -> str | None:
    """Return the browser's mark of the newest keyring it has seen, if any."""
    return request.cookies.get(RING_COOKIE)


def open_session(user_key: bytes) -> str:
    """Open a key session for the current login; return the value of its cookie."""
    g.user_key = user_key
    return keysessions.open_session(
        user=current_user, user_key=user_key, login_id=logins.current_id(), now=now()
    )


def is_unlocked() -> bool:
    """Return whether the current request can open notes without asking for the password."""
    try:
        user_key(allow_rollback=True)
    except Locked:
        return False
    return True


def refresh_keyring_mark(response: Response) -> Response:
    """After a request that used the keys, let the browser keep the keyring's newest counter.

    Only ever moved forward: a keyring put back never lowers the mark it is checked against.
    """
    if "user_key" not in g or not current_user.is_authenticated:
        return response
    try:
        current = keyring.mark(user=current_user, user_key=g.user_key)
    except DecryptionFailed:
        return response  # the page already says what could not be opened
    if current is None:
        return response
    counter, value = current
    seen = keyring.marked_counter(user=current_user, user_key=g.user_key, mark=keyring_mark())
    if counter > seen:
        response.set_cookie(
            RING_COOKIE,
            value,
            max_age=_RING_MAX_AGE,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
    return response


def set_cookie(response: Response, value: str) -> None:
    """Give the browser its half of the key session: never readable by scripts."""
    response.set_cookie(
        keysessions.COOKIE_NAME,
        value,
        max_age=int(current_app.config["KEY_SESSION_ABSOLUTE"].total_seconds()),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(response: Response) -> None:
    """Drop the key-session cookie."""
    response.delete_cookie(
        keysessions.COOKIE_NAME,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
