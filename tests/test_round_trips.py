"""How many times a page waits for the database, and recovery when the database restarts.

A round trip is one statement, a BEGIN, COMMIT or ROLLBACK, or a liveness ping on checkout,
counted with SQLAlchemy's engine and pool events. Counting is on the safe side: a BEGIN is
counted when SQLAlchemy begins, and a ROLLBACK whenever one is issued, even where the driver
needs to send nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager

import psycopg
import pytest
import sqlalchemy as sa

from wishnotes.extensions import db
from wishnotes.models import User

from .conftest import POSTGRES_URL, login, pair_users, post_form, register_user

WISH = "I would like us to walk by the river on Sunday."
MAX_ROUND_TRIPS = 5
postgres_only = pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL")


@pytest.fixture
def couple(app):
    """Ada and Bo, paired, signed in with keys unlocked; each has used their keys once."""
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    ada, bo = app.test_client(), app.test_client()
    login(ada)
    login(bo, email="bo@example.com")
    # The first use of keys after pairing pins the partner's (a once-per-pairing write).
    assert post_form(ada, "/notes/new", {"body": WISH}).status_code == 302
    assert bo.get("/notes/" + _note_id(bo.get("/notes/").get_data(as_text=True))).status_code == 200
    assert post_form(ada, "/notes/new", {"body": WISH}).status_code == 302
    return ada, bo


@contextmanager
def round_trips(app):
    """Count the database round trips made inside the block, by kind."""
    counts: Counter[str] = Counter()
    with app.app_context():
        engine = db.engine

    def on_begin(connection) -> None:
        # An autocommit connection sends its one statement without any BEGIN.
        if not getattr(connection.connection.dbapi_connection, "autocommit", False):
            counts.update(["begin"])

    def on_rollback(connection) -> None:
        if _driver_in_transaction(connection.connection.dbapi_connection):
            counts.update(["rollback"])

    listeners = {
        "before_cursor_execute": lambda *a, **k: counts.update(["statement"]),
        "begin": on_begin,
        "commit": lambda *a: counts.update(["commit"]),
        "rollback": on_rollback,
    }

    def on_reset(dbapi_connection, _record, state) -> None:
        # Returning a connection to the pool rolls back only what is still open.
        if not state.transaction_was_reset and _driver_in_transaction(dbapi_connection):
            counts.update(["reset"])

    real_ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection):
        counts.update(["ping"])
        return real_ping(dbapi_connection)

    for name, fn in listeners.items():
        sa.event.listen(engine, name, fn)
    sa.event.listen(engine.pool, "reset", on_reset)
    engine.dialect.do_ping = counted_ping
    try:
        yield counts
    finally:
        del engine.dialect.do_ping
        for name, fn in listeners.items():
            sa.event.remove(engine, name, fn)
        sa.event.remove(engine.pool, "reset", on_reset)


def _driver_in_transaction(dbapi_connection) -> bool:
    """Return whether a ROLLBACK now would reach the server (psycopg skips it when idle)."""
    info = getattr(dbapi_connection, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is not None:
        return status != psycopg.pq.TransactionStatus.IDLE
    return bool(getattr(dbapi_connection, "in_transaction", True))


def _note_id(page: str) -> str:
    return re.search(r'href="/notes/([0-9a-f]{32})"', page).group(1)


def _unread_note_id(page: str) -> str:
    return re.search(r'class="card unread">\s*<a href="/notes/([0-9a-f]{32})"', page).group(1)


def test_the_inbox_takes_at_most_five_round_trips(app, couple):
    _, bo = couple
    bo.get("/notes/")  # warm the pool: a connection is made once, not per page
    with round_trips(app) as counts:
        page = bo.get("/notes/")
    assert page.status_code == 200 and "From Ada" in page.get_data(as_text=True)
    assert counts.total() <= MAX_ROUND_TRIPS, counts


def test_a_note_opens_in_at_most_five_round_trips_the_first_time_and_after(app, couple):
    _, bo = couple
    note_id = _unread_note_id(bo.get("/notes/").get_data(as_text=True))
    with round_trips(app) as first:
        page = bo.get(f"/notes/{note_id}")
    assert page.status_code == 200 and WISH in page.get_data(as_text=True)
    assert first["commit"] == 1  # the first open marks the note read
    assert first.total() <= MAX_ROUND_TRIPS, first
    with round_trips(app) as again:
        page = bo.get(f"/notes/{note_id}")
    assert page.status_code == 200 and WISH in page.get_data(as_text=True)
    assert again.total() <= MAX_ROUND_TRIPS, again


def test_sending_a_note_takes_at_most_five_round_trips(app, couple):
    ada, _ = couple
    form = ada.get("/notes/new").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    with round_trips(app) as counts:
        sent = ada.post("/notes/new", data={"body": WISH, "csrf_token": token})
    assert sent.status_code == 302
    assert counts.total() <= MAX_ROUND_TRIPS, counts


# On SQLite the claim and the queued email are two statements in a transaction of their own.
@postgres_only
def test_the_first_note_of_a_notice_interval_still_takes_at_most_five_round_trips(app, couple):
    ada, _ = couple
    with app.app_context():
        db.session.execute(sa.text("UPDATE users SET last_notice_at = NULL"))
        db.session.commit()
    form = ada.get("/notes/new").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    with round_trips(app) as counts:
        sent = ada.post("/notes/new", data={"body": WISH, "csrf_token": token})
    assert sent.status_code == 302
    assert counts.total() <= MAX_ROUND_TRIPS, counts


# --- a restarted database ----------------------------------------------------------------


def _terminate_other_backends(app) -> int:
    """End every other connection to the test database, as a database restart would."""
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        poolclass=sa.pool.NullPool,
    )
    with admin.connect() as connection:
        ended = connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    return ended


@postgres_only
def test_after_a_database_restart_one_calm_failure_then_pages_work(app, couple):
    _, bo = couple
    app.config["DATABASE_PING_AFTER"] = 3600.0  # connections in steady use: no ping
    assert bo.get("/notes/").status_code == 200
    assert _terminate_other_backends(app) >= 1
    first = bo.get("/notes/")
    # The pooled connection was found dead: a calm "try again" page, and the pool is renewed.
    assert first.status_code == 503
    assert first.headers["Retry-After"] == "1"
    assert "try again" in first.get_data(as_text=True).lower()
    after = bo.get("/notes/")
    assert after.status_code == 200 and "From Ada" in after.get_data(as_text=True)


@postgres_only
def test_a_connection_that_sat_idle_is_checked_before_use(app, couple):
    _, bo = couple
    app.config["DATABASE_PING_AFTER"] = 0.0  # every checkout counts as after a long idle
    assert bo.get("/notes/").status_code == 200
    assert _terminate_other_backends(app) >= 1
    page = bo.get("/notes/")
    assert page.status_code == 200 and "From Ada" in page.get_data(as_text=True)


# --- read-only pages keep the connection's prepared statements --------------------------------


def _prepared_statements_in_pool(app) -> int:
    """The most statements prepared on the server by any connection waiting in the pool."""
    with app.app_context():
        engine = db.engine
    found, taken = 0, []
    try:
        for _ in range(engine.pool.checkedin()):
            connection = engine.raw_connection()
            taken.append(connection)
            cursor = connection.cursor()
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            found = max(found, cursor.fetchone()[0])
            connection.commit()  # a ROLLBACK would make psycopg forget them
    finally:
        for connection in taken:
            connection.close()
    return found


def test_a_page_that_only_read_ends_its_transaction_with_commit(app, couple):
    _, bo = couple
    bo.get("/notes/")
    with round_trips(app) as counts:
        page = bo.get("/notes/")
    assert page.status_code == 200
    # psycopg forgets every prepared statement of a connection on ROLLBACK; a transaction
    # that wrote nothing is committed instead, with the same effect and one round trip too.
    assert counts["rollback"] == 0 and counts["reset"] == 0, counts
    assert counts["commit"] == 1, counts


@postgres_only
def test_statements_stay_prepared_from_one_page_to_the_next(app, couple):
    _, bo = couple
    for _ in range(8):  # psycopg prepares a statement the fifth time a connection sends it
        assert bo.get("/notes/").status_code == 200
    assert _prepared_statements_in_pool(app) >= 1


@pytest.mark.parametrize("how", ["statement", "flushed object"])
def test_a_request_that_wrote_without_committing_is_still_rolled_back(app, how):
    @app.get("/__test_write_unsaved")
    def _write_unsaved():
        if how == "statement":
            db.session.execute(sa.text("UPDATE users SET display_name = 'Changed'"))
        else:
            user = db.session.scalar(sa.select(User))
            user.display_name = "Changed"
            db.session.flush()
        return "answered without saving"

    register_user(app, "ada@example.com", "Ada")
    assert app.test_client().get("/__test_write_unsaved").status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(User.display_name)) == "Ada"


def test_a_request_whose_flush_failed_and_was_caught_still_answers(app):
    @app.get("/__test_failed_flush")
    def _failed_flush():
        db.session.add(User())  # no email: the INSERT fails and the transaction is spent
        try:
            db.session.flush()
        except sa.exc.IntegrityError:
            return "caught"
        return "flushed", 500

    response = app.test_client().get("/__test_failed_flush")
    assert response.status_code == 200 and response.get_data(as_text=True) == "caught"


def test_a_request_whose_select_failed_and_was_caught_is_rolled_back(app):
    @app.get("/__test_failed_select")
    def _failed_select():
        try:
            db.session.execute(sa.text("SELECT * FROM no_such_table"))
        except sa.exc.DBAPIError:
            return "caught"
        return "found", 500

    with round_trips(app) as counts:
        response = app.test_client().get("/__test_failed_select")
    assert response.status_code == 200 and response.get_data(as_text=True) == "caught"
    assert counts["commit"] == 0, counts  # a failed statement is never committed over
