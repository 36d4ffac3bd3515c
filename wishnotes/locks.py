"""Row locks in one fixed order, so changes that touch two people never deadlock.

Accepting an invite, ending a pair and deleting an account each depend on who is paired with
whom. Each locks the user rows involved first, always in id order, with SELECT ... FOR UPDATE:
two such changes at once then wait for each other (PostgreSQL) instead of each holding one row
the other needs, and the one that waited reads the rows as the other left them. SQLite ignores
FOR UPDATE; its single writer serialises the writes instead. Sending a note takes no lock: it
checks the pair inside its INSERT (see notes.write_note)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from wishnotes.extensions import db
from wishnotes.models import User


def lock_users(ids: Iterable[int | None]) -> dict[int, User]:
    """Lock the users with these ids (in id order), refresh them, and return those that exist."""
    wanted = sorted({user_id for user_id in ids if user_id is not None})
    rows = db.session.scalars(
        select(User)
        .where(User.id.in_(wanted))
        .order_by(User.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {user.id: user for user in rows}
