"""`wishnotes bench history`: does a page cost the same with a long history behind it?

Fills a PostgreSQL database with many users and notes (server-side INSERT ... SELECT over
generate_series: one real envelope, sealed by the app, reused for every filler row, since lists
never decrypt), then measures the inbox of a pair with a long history against the inbox of a
pair with ten notes, and prints EXPLAIN ANALYZE of the list and unread-count queries.
Figures are printed, never asserted. The database's tables are dropped and rebuilt.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from statistics import median

import click
from flask import Flask
from sqlalchemy import func, select, text

from wishnotes import database, notes, pairing
from wishnotes.bench import PASSWORD, bench_app, csrf_token, make_user, print_table
from wishnotes.clock import now
from wishnotes.extensions import db
from wishnotes.models import Note, Pair, User

GOAL = 1.3
_HISTORY = timedelta(days=730)


@click.command("history")
@click.option("--database-url", required=True, help="PostgreSQL database to fill (tables reset).")
@click.option("--users", default=100_000, show_default=True, type=click.IntRange(10, 10_000_000))
@click.option(
    "--notes", "note_count", default=1_000_000, show_default=True, type=click.IntRange(100)
)
@click.option("--long-pair", default=20_000, show_default=True, type=click.IntRange(10))
@click.option("--rounds", default=7, show_default=True, type=click.IntRange(5, 101))
def history_command(
    database_url: str, users: int, note_count: int, long_pair: int, rounds: int
) -> None:
    """Inbox of a pair with a long history vs one with ten notes, on a large database."""
    if database.is_sqlite(database_url):
        raise click.BadParameter("needs PostgreSQL", param_hint="--database-url")
    if long_pair + 10 > note_count:
        raise click.BadParameter("must leave room for other notes", param_hint="--long-pair")
    with tempfile.TemporaryDirectory(prefix="wishnotes-bench-") as folder:
        app = bench_app(database_url, Path(folder))
        started = time.perf_counter()
        long_ids, short_ids = _fill(app, users=users, note_count=note_count, long_pair=long_pair)
        built = time.perf_counter() - started
        click.echo(
            f"history benchmark: {users:,} users, {note_count:,} notes, built in {built:.1f} s"
        )
        _measure(app, long_ids=long_ids, short_ids=short_ids, long_pair=long_pair, rounds=rounds)


# --- filling -------------------------------------------------------------------------------


def _fill(app: Flask, *, users: int, note_count: int, long_pair: int):
    """Build the database; return the (reader, writer) ids of the long and the short pair."""
    long_ids = (make_user(app, "long-a@example.com", "Alex"), make_user(app, "long-b@example.com"))
    short_ids = (
        make_user(app, "short-a@example.com", "Sam"),
        make_user(app, "short-b@example.com"),
    )
    with app.app_context():
        for reader, writer in (long_ids, short_ids):
            _pair(reader, writer)
        params = _template_params(_real_note(app, writer=long_ids[1]))
        db.session.execute(text("DELETE FROM notes"))
        db.session.commit()
        engine = db.engine
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL synchronous_commit = off"))
        # Indexes are built once after the load, as a bulk load does.
        for name in ("ix_notes_inbox", "ix_notes_sent", "ix_notes_unread"):
            connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
        _fill_users(connection, users - 4, params)
        first_filler = connection.execute(text("SELECT min(id) FROM users WHERE id > 4")).scalar()
        pairs = (users - 4) // 2
        _fill_pairs(connection, first_filler, pairs)
        # Every note of the two measured pairs is in the reader's inbox: the harder case.
        for (reader, writer), count, offset in (
            (long_ids, long_pair, 0),
            (short_ids, 10, long_pair),
        ):
            pair_id = connection.execute(
                text("SELECT pair_id FROM users WHERE id = :id"), {"id": reader}
            ).scalar()
            _fill_notes_of_pair(connection, pair_id, reader, writer, count, offset, params)
        _fill_other_notes(
            connection, note_count - long_pair - 10, first_filler, pairs, long_pair + 10, params
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(
            text("CREATE INDEX ix_notes_inbox ON notes (pair_id, recipient_id, created_at, id)")
        )
        connection.execute(
            text("CREATE INDEX ix_notes_sent ON notes (pair_id, sender_id, created_at, id)")
        )
        connection.execute(
            text(
                "CREATE INDEX ix_notes_unread ON notes (recipient_id, pair_id) "
                "WHERE read_at IS NULL"
            )
        )
        connection.execute(text("VACUUM ANALYZE"))
    return long_ids, short_ids


def _pair(first_id: int, second_id: int) -> None:
    """Pair two users as the invite link would: both unlocked, both keys checked and pinned."""
    first, second = db.session.get(User, first_id), db.session.get(User, second_id)
    token = pairing.create_invite(user=first, user_key=_user_key(first), now=now())
    pairing.accept_invite(user=second, token=token, now=now(), user_key=_user_key(second))


def _user_key(user: User) -> bytes:
    from flask import current_app

    from wishnotes import accounts

    kdf = current_app.extensions["wishnotes.kdf"]
    return accounts.authenticate(email=user.email, password=PASSWORD, kdf=kdf).user_key


def _real_note(app: Flask, *, writer: int) -> Note:
    """Write one real note through the service: its envelope is the bytes reused below."""
    from wishnotes import accounts

    user = db.session.get(User, writer)
    key = accounts.authenticate(
        email=user.email, password=PASSWORD, kdf=app.extensions["wishnotes.kdf"]
    ).user_key
    body = "I would like us to take the long way home on Sunday and stop for a coffee. " * 3
    return notes.write_note(user=user, user_key=key, text=body, title="Sunday", now=now())


def _template_params(note: Note) -> dict:
    user = db.session.get(User, note.sender_id)
    return {
        "envelope": bytes(note.envelope),
        "kdf_salt": bytes(user.kdf_salt),
        "auth_digest": bytes(user.auth_digest),
        "uk_by_password": bytes(user.uk_by_password),
        "uk_by_recovery": bytes(user.uk_by_recovery),
        "private_keys": bytes(user.private_keys),
        "hpke_public": bytes(user.hpke_public),
        "sign_public": bytes(user.sign_public),
        "key_id": user.key_id,
        "now": now().replace(tzinfo=None),
        "history_seconds": int(_HISTORY.total_seconds()),
    }


def _fill_users(connection, count: int, params: dict) -> None:
    connection.execute(
        text(
            "INSERT INTO users (email, display_name, created_at, kdf_salt,"
            " kdf_memory_kib, kdf_iterations, kdf_lanes, auth_digest, uk_by_password,"
            " uk_by_recovery, private_keys, hpke_public, sign_public, key_id, blur_notes,"
            " app_look, timezone, weekly_email, weekly_weekday, weekly_hour, daily_email,"
            " daily_hour, note_notice, discreet_subjects)"
            " SELECT 'filler' || i || '@example.com', 'Filler ' || i,"
            " :now - make_interval(secs => :history_seconds), :kdf_salt, 65536, 3, 1,"
            " :auth_digest, :uk_by_password, :uk_by_recovery, :private_keys, :hpke_public,"
            " :sign_public, :key_id, true, 'discreet', 'UTC', true, i % 7, 8 + i % 12, false,"
            " 18, true, true FROM generate_series(1, :count) AS i"
        ),
        {**params, "count": count},
    )


def _fill_pairs(connection, first_filler: int, pairs: int) -> None:
    connection.execute(
        text(
            "INSERT INTO pairs (first_user_id, second_user_id, created_at)"
            " SELECT :first + 2 * i, :first + 2 * i + 1, :now - make_interval(secs => :secs)"
            " FROM generate_series(0, :pairs - 1) AS i"
        ),
        {"first": first_filler, "pairs": pairs, "now": now().replace(tzinfo=None), "secs": 7e7},
    )
    first_pair = connection.execute(
        text("SELECT min(id) FROM pairs WHERE first_user_id >= :first"), {"first": first_filler}
    ).scalar()
    connection.execute(
        text(
            "UPDATE users SET pair_id = :first_pair + (id - :first) / 2"
            " WHERE id >= :first AND id < :first + 2 * :pairs"
        ),
        {"first": first_filler, "first_pair": first_pair, "pairs": pairs},
    )


def _fill_notes_of_pair(connection, pair_id, reader, writer, count, offset, params) -> None:
    # Note i is i minutes older than now; the newest five are unread.
    connection.execute(
        text(
            "INSERT INTO notes (id, pair_id, sender_id, recipient_id, created_at, sealed,"
            " envelope, read_at)"
            " SELECT md5('bench-note-' || (:offset + i)), :pair, :writer, :reader,"
            " date_trunc('second', :now - make_interval(mins => i + 1)), false, :envelope,"
            " CASE WHEN i < 5 THEN NULL"
            " ELSE date_trunc('second', :now - make_interval(mins => i)) END"
            " FROM generate_series(0, :count - 1) AS i"
        ),
        {
            **params,
            "offset": offset,
            "pair": pair_id,
            "reader": reader,
            "writer": writer,
            "count": count,
        },
    )


def _fill_other_notes(connection, count, first_filler, pairs, offset, params) -> None:
    # Spread over the other pairs at random, over two years; one in fifty still unread.
    connection.execute(
        text(
            "INSERT INTO notes (id, pair_id, sender_id, recipient_id, created_at, sealed,"
            " envelope, read_at)"
            " SELECT md5('bench-note-' || (:offset + i)), p.id,"
            " CASE WHEN r < 0.5 THEN p.first_user_id ELSE p.second_user_id END,"
            " CASE WHEN r < 0.5 THEN p.second_user_id ELSE p.first_user_id END,"
            " c, false, :envelope, CASE WHEN random() < 0.02 THEN NULL ELSE c END"
            " FROM (SELECT i, random() AS r,"
            " (SELECT id FROM pairs WHERE first_user_id >= :first"
            "  ORDER BY id LIMIT 1) + floor(random() * :pairs)::int AS pair_id,"
            " date_trunc('second', :now - make_interval(secs => random() * :history_seconds))"
            " AS c FROM generate_series(0, :count - 1) AS i) AS g"
            " JOIN pairs AS p ON p.id = g.pair_id"
        ),
        {**params, "count": count, "first": first_filler, "pairs": pairs, "offset": offset},
    )


# --- measuring -----------------------------------------------------------------------------


def _measure(app: Flask, *, long_ids, short_ids, long_pair: int, rounds: int) -> None:
    with app.app_context():
        counts = db.session.execute(
            select(
                select(func.count()).select_from(User).scalar_subquery(),
                select(func.count()).select_from(Note).scalar_subquery(),
                select(func.count()).select_from(Pair).scalar_subquery(),
            )
        ).one()
        click.echo(f"  rows: {counts[0]:,} users, {counts[1]:,} notes, {counts[2]:,} pairs")
        long_reader = db.session.get(User, long_ids[0])
        short_reader = db.session.get(User, short_ids[0])
        deep_cursor = _cursor_after_pages(long_reader, pages=50)
        queries = {
            "inbox query, long pair": lambda: notes.inbox(user=long_reader),
            "inbox query, short pair": lambda: notes.inbox(user=short_reader),
            "inbox query, long pair, page 51": lambda: notes.inbox(
                user=long_reader, before=deep_cursor
            ),
            "unread count, long pair": lambda: notes.unread_count(user=long_reader),
            "unread count, short pair": lambda: notes.unread_count(user=short_reader),
        }
        query_times = _interleaved(queries, rounds=rounds, repeat=20)
    long_client, short_client = (
        _signed_in(app, "long-a@example.com"),
        _signed_in(app, "short-a@example.com"),
    )
    pages = {
        "inbox page, long pair": lambda: _get(long_client, "/notes/"),
        "inbox page, short pair": lambda: _get(short_client, "/notes/"),
    }
    page_times = _interleaved(pages, rounds=rounds, repeat=10)
    rows = [(label, f"{seconds * 1000:8.3f} ms") for label, seconds in query_times.items()]
    rows += [(label, f"{seconds * 1000:8.3f} ms") for label, seconds in page_times.items()]
    query_ratio = query_times["inbox query, long pair"] / query_times["inbox query, short pair"]
    page_ratio = page_times["inbox page, long pair"] / page_times["inbox page, short pair"]
    for label, ratio in (("query", query_ratio), ("page", page_ratio)):
        verdict = "ok" if ratio <= GOAL else "ABOVE GOAL"
        rows.append((f"long/short, inbox {label} (goal <= {GOAL})", f"{ratio:8.2f}  {verdict}"))
    click.echo(
        f"  medians of {rounds} interleaved rounds; the reader's inbox holds {long_pair:,} notes"
        f" (long pair) or 10 (short pair); {notes.PAGE_SIZE} notes a page"
    )
    print_table(rows)
    with app.app_context():
        long_reader = db.session.get(User, long_ids[0])
        for label, query in _explained(long_reader, deep_cursor).items():
            click.echo(f"\nEXPLAIN (ANALYZE, BUFFERS) {label}:")
            for line in _explain(query):
                click.echo(f"  {line}")


def _cursor_after_pages(user: User, *, pages: int) -> str | None:
    cursor = None
    for _ in range(pages):
        page = notes.inbox(user=user, before=cursor)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return cursor


def _interleaved(work: dict[str, Callable[[], object]], *, rounds: int, repeat: int):
    """Median seconds per call of each job, over rounds that take turns between the jobs."""
    for job in work.values():
        job()  # warm caches and connections
    samples: dict[str, list[float]] = {label: [] for label in work}
    for _ in range(rounds):
        for label, job in work.items():
            start = time.perf_counter()
            for _ in range(repeat):
                job()
            samples[label].append((time.perf_counter() - start) / repeat)
    return {label: median(values) for label, values in samples.items()}


def _signed_in(app: Flask, email: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = csrf_token(page)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    if response.status_code != 302:
        raise click.ClickException(f"signing in {email} failed ({response.status_code})")
    return client


def _get(client, path: str) -> None:
    response = client.get(path)
    if response.status_code != 200:
        raise click.ClickException(f"GET {path} gave {response.status_code}")


def _explained(user: User, deep_cursor: str | None) -> dict:
    """The statements the inbox and the unread count run, captured as they are executed."""
    captured: dict = {}
    for label, call in (
        ("inbox, first page", lambda: notes.inbox(user=user)),
        ("inbox, page 51 (cursor)", lambda: notes.inbox(user=user, before=deep_cursor)),
        ("unread count", lambda: notes.unread_count(user=user)),
    ):
        captured[label] = _capture(call)
    return captured


def _capture(call: Callable[[], object]) -> tuple[str, dict]:
    from sqlalchemy import event

    seen: list[tuple[str, dict]] = []

    def grab(_conn, _cursor, statement, parameters, _context, _many) -> None:
        seen.append((statement, dict(parameters)))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    return seen[-1]


def _explain(query: tuple[str, dict]) -> list[str]:
    statement, parameters = query
    with db.engine.connect() as connection:
        result = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return [row[0] for row in result]
