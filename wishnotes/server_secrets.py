"""Server secrets: SECRET_KEY and PEPPER from the environment, or generated for development.

A changed or lost pepper opens nothing (every password and recovery key is mixed with it), and
would otherwise look to everyone like a wrong password. So the database keeps a check value
derived from the pepper (an HMAC of a fixed label, never the pepper) from the first start on,
and the app refuses to start when the pepper in use does not match it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError

from wishnotes.errors import WishnotesError
from wishnotes.models import PepperCheck

log = logging.getLogger(__name__)

SECRET_NAMES = {"SECRET_KEY": "WISHNOTES_SECRET_KEY", "PEPPER": "WISHNOTES_PEPPER"}
MIN_LENGTH = 32
FILENAME = "secrets.json"


_CHECK_LABEL = b"wishnotes pepper check v1"
_CHECK_ROW = 1


class MissingSecret(WishnotesError):
    """Production was started without a secret it needs."""


class PepperMismatch(WishnotesError):
    """The pepper is not the one the database was created with."""

    message = (
        "WISHNOTES_PEPPER is not the pepper this database was created with, so no password or "
        "recovery key would open any account. Restore WISHNOTES_PEPPER from your backup (it is "
        "kept with the database backups; in development, instance/secrets.json) and start "
        "again. Refusing to start."
    )


def resolve(config: dict, *, instance_path: Path) -> dict[str, str]:
    """Return the secrets to use; outside production, generate them once into the instance."""
    given = {name: config.get(name) for name in SECRET_NAMES}
    for name, value in given.items():
        if value and len(value) < MIN_LENGTH:
            raise MissingSecret(
                f"{SECRET_NAMES[name]} must be at least {MIN_LENGTH} characters long."
            )
    missing = [name for name, value in given.items() if not value]
    if not missing:
        return given
    if config.get("ENV") == "production":
        names = ", ".join(SECRET_NAMES[name] for name in missing)
        raise MissingSecret(f"Production needs {names}; refusing to start without it.")
    stored = _load_or_create(instance_path / FILENAME)
    return {name: given[name] or stored[name] for name in SECRET_NAMES}


def _load_or_create(path: Path) -> dict[str, str]:
    """Read the development secrets file, creating it with mode 0600 on first run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if all(isinstance(data.get(name), str) for name in SECRET_NAMES):
            return data
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise MissingSecret(
            f"Cannot read {path}: {exc}. Delete it to generate new secrets."
        ) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {name: secrets.token_urlsafe(48) for name in SECRET_NAMES}
    # O_EXCL: two processes starting at once must not overwrite each other's secrets.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return json.loads(path.read_text(encoding="utf-8"))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return data


def pepper_check_value(pepper: bytes) -> bytes:
    """Return the check value of a pepper: it names the pepper without revealing it."""
    return hmac.new(pepper, _CHECK_LABEL, hashlib.sha256).digest()


def check_pepper(engine: Engine, *, pepper: bytes) -> None:
    """Record the pepper's check value on first start; raise PepperMismatch when it differs.

    A database not migrated yet has nothing to compare (the first start after `db upgrade`
    records it), and one that cannot be reached is checked at the next start instead: the app
    keeps starting without its database, as it always has.
    """
    expected = pepper_check_value(pepper)
    table = PepperCheck.__table__
    try:
        if not inspect(engine).has_table(table.name):
            return
        stored = _stored_check(engine)
        if stored is None:
            try:
                with engine.begin() as connection:
                    connection.execute(
                        insert(table).values(
                            id=_CHECK_ROW, check_value=expected, created_at=datetime.now(UTC)
                        )
                    )
                return
            except IntegrityError:  # another process started at the same moment
                stored = _stored_check(engine)
    except OperationalError:
        log.warning("Could not check WISHNOTES_PEPPER: the database is not reachable.")
        return
    if stored is not None and not hmac.compare_digest(stored, expected):
        raise PepperMismatch()


def _stored_check(engine: Engine) -> bytes | None:
    table = PepperCheck.__table__
    with engine.connect() as connection:
        return connection.scalar(select(table.c.check_value).where(table.c.id == _CHECK_ROW))
