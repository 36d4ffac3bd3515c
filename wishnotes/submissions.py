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
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from wishnotes.extensions import db

T = TypeVar("T")
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


def commit_once(
    row: T, *, earlier: Callable[[], T | None], refused: Callable[[], Exception] | None = None
) -> T:
    """Commit the session that adds `row`; if the database refuses it, return `earlier()`.

    Two posts of the same form at the same moment both pass the check before the insert; the
    unique (author, key) index lets one through, and the other gets the row that one made. Any
    other refusal (a unique rule of the service, such as one open place a pair) raises
    `refused()`, or the database's error when there is none.
    """
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if (found := earlier()) is not None:
            return found
        if refused is None:
            raise
        raise refused() from None
    return row
