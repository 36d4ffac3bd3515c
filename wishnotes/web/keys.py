"""The request's view of its key session: the split-key cookie and the unlocked user key."""

from __future__ import annotations

from flask import Response, current_app, g, request
from flask_login import current_user

from wishnotes import keysessions
from wishnotes.clock import now
from wishnotes.errors import Locked
from wishnotes.kdf import KdfRunner
from wishnotes.web import logins


def kdf() -> KdfRunner:
    """Return the app's capped Argon2id runner (pepper and target cost)."""
    return current_app.extensions["wishnotes.kdf"]


def user_key() -> bytes:
    """Return the current user's key for this request, or raise Locked."""
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
    return g.user_key


def open_session(user_key: bytes) -> str:
    """Open a key session for the current login; return the value of its cookie."""
    g.user_key = user_key
    return keysessions.open_session(
        user=current_user, user_key=user_key, login_id=logins.current_id(), now=now()
    )


def is_unlocked() -> bool:
    """Return whether the current request can open notes without asking for the password."""
    try:
        user_key()
    except Locked:
        return False
    return True


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
