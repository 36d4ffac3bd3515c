"""Database URLs and engine settings for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from sqlalchemy import any_, bindparam, event, exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine, make_url

SQLITE_FILENAME = "wishnotes.sqlite3"
# Set on a connection (its `info`) once its transaction sends anything but a SELECT, or fails.
_WROTE = "wishnotes.wrote"


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


def configure_engine(engine: Engine, *, ping_after: Callable[[], float] | None = None) -> None:
    """Set up SQLite's pragmas, or for a server database the check of idle connections."""
    _note_writes(engine)
    if engine.dialect.name != "sqlite":
        if ping_after is not None:
            _ping_when_idle(engine, ping_after)
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


def _ping_when_idle(engine: Engine, ping_after: Callable[[], float]) -> None:
    """Ping a pooled connection before use only if it sat idle longer than `ping_after()`.

    A ping on every checkout (pool_pre_ping) costs a round trip per request. A connection in
    steady use needs none: if the server restarted meanwhile, the first statement fails, the
    engine invalidates the whole pool at once, and the request answers a calm 503 (see
    web/errors.py), so at most the requests already in flight see the restart. After a quiet
    spell, when a restart is most likely to have gone unnoticed, the ping finds a dead
    connection and the pool replaces it before any statement is sent.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection, record, _proxy) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < ping_after():
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                # The pool throws this connection away and hands out a fresh one.
                raise exc.DisconnectionError() from error
            raise


def _note_writes(engine: Engine) -> None:
    """Mark a connection's transaction as having written once it sends anything but a SELECT.

    Conservative: INSERT, UPDATE, DELETE, a savepoint, a statement run for many rows, a
    statement that failed, and anything else not starting with SELECT all count as writing.
    """

    @event.listens_for(engine, "begin")
    def _began(connection) -> None:
        connection.info[_WROTE] = False

    @event.listens_for(engine, "before_cursor_execute")
    def _sending(connection, _cursor, statement, _parameters, _context, executemany) -> None:
        if executemany or statement.lstrip()[:6].upper() != "SELECT":
            connection.info[_WROTE] = True

    @event.listens_for(engine, "handle_error")
    def _failed(context) -> None:
        if context.connection is not None:
            context.connection.info[_WROTE] = True


def commit_what_only_read(error: BaseException | None) -> None:
    """End a request's transaction that only read with COMMIT instead of ROLLBACK (teardown).

    For a transaction that wrote nothing the two are the same to the database, but psycopg
    forgets every statement it prepared on a connection when it rolls back, so a site whose
    pages end with ROLLBACK has the server parse and plan every query of every page again.
    Anything written, pending or failed is left alone: the session's close rolls it back.
    """
    from wishnotes.extensions import db

    if error is not None or not db.session.registry.has():
        return
    session = db.session()
    transaction = session.get_transaction()
    if transaction is None or not transaction.is_active:  # none, or spent by a failed flush
        return
    if session.new or session.dirty or session.deleted:
        return
    if session.connection().info.get(_WROTE, True):
        return
    session.expire_on_commit = False  # the session ends next: what it loaded stays readable
    session.commit()


def keep_objects_after_commit() -> None:
    """Let a request's session keep its objects loaded after a commit (a before_request hook).

    A page that writes and then renders (opening a note marks it read; sending one queues the
    notice) would otherwise reload every object it shows, one query each. Safe for a request:
    its session lives for that request only, and what it committed is what it holds. Jobs,
    commands and tests keep the default, where a commit expires everything.
    """
    from wishnotes.extensions import db

    db.session().expire_on_commit = False


def render_migration_item(type_: str, obj, autogen_context):
    """Write UTCDateTime columns as plain DateTime, so migrations never import the models."""
    from wishnotes.models import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def one_of(column, values: Collection[Any]):
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`, one parameter for them all.

    An IN list of hundreds of ids costs SQLAlchemy and psycopg work per id to render and parse,
    and a new statement text per length; an array is one parameter of one statement.
    """
    from wishnotes.extensions import db

    values = list(values)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)
