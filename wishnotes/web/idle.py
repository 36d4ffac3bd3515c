"""The idle lock seen from the page: how long the notes stay unlocked, and "I am still here".

Pages carry the seconds left; a small script asks here before locking, because another tab may have
kept the key session alive. Without scripts the server-side timeout applies all the same.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from wishnotes.errors import Locked
from wishnotes.web import keys
from wishnotes.web.shell import idle_seconds

bp = Blueprint("idle", __name__, url_prefix="/keys")


@bp.get("/idle")
def status():
    left = idle_seconds() if current_user.is_authenticated else None
    return jsonify(seconds_left=left)


@bp.post("/idle")
def still_here():
    # Typing or scrolling in an open page counts as activity: using the keys renews the session.
    if not current_user.is_authenticated:
        return jsonify(seconds_left=None)
    try:
        keys.user_key()
    except Locked:
        return jsonify(seconds_left=None)
    return jsonify(seconds_left=idle_seconds())
