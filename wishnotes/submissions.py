"""One-time submission keys: a double click or a resent form creates one thing, not two.

Every form that creates something carries a random key, minted with the form (a hidden field).
The row it creates stores the key under a unique constraint with its author, so a second post
of the same form finds the first one's result instead of making another row, even when both
posts arrive at the same moment (the database refuses the second insert). An account keeps its
registration form's key too, but there the unique address refuses the second row, and the key
counts only with the same password (wishnotes.accounts.register). Keys are random and say
nothing; a missing or malformed key only means no protection for that post.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import select

from wishnotes.extensions import db

KEY_LENGTH = 64
_KEY = re.compile(r"[A-Za-z0-9_-]{22,64}")


def mint() -> str:
    """Return a fresh submission key for a form."""
    return secrets.token_urlsafe(24)


def checked(key: str | None) -> str | None:
    """Return `key` if it is a well-formed submission key, else None."""
    if isinstance(key, str) and _KEY.fullmatch(key):
        return key
    return None


def made_by(model: Any, author: Any, user_id: int, key: str | None) -> Any:
    """Return the row of `model` that `user_id` (in column `author`) made with `key`, if any."""
    if key is None:
        return None
    return db.session.scalar(select(model).where(author == user_id, model.submission_key == key))
