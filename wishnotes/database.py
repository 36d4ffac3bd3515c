"""Database URLs and engine settings for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

SQLITE_FILENAME = "wishnotes.sqlite3"


def normalize_url(url: str | None, *, instance_path: Path) -> str:
    """Return the URL to use: SQLite in the instance folder, or psycopg 3 for PostgreSQL."""
    if not url:
        return f"sqlite:///{instance_path / SQLITE_FILENAME}"
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """Return whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def configure_engine(engine: Engine) -> None:
    """Turn on SQLite's foreign keys and WAL on every connection (it has neither by default)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL never corrupts; a power cut may lose only the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def render_migration_item(type_: str, obj, autogen_context):
    """Write UTCDateTime columns as plain DateTime, so migrations never import the models."""
    from wishnotes.models import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False
