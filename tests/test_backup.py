"""`wishnotes backup`: a copy taken while notes are written restores with every note opening."""

import shutil
import stat
import subprocess
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from wishnotes import accounts, notes
from wishnotes.cli import main
from wishnotes.extensions import db
from wishnotes.models import Note, User

from .conftest import PASSWORD, POSTGRES_URL, make_app, now, pair_users, register_user
from .conftest import reset_database as build_tables

NOTES = 60


def _key(app, email):
    return accounts.authenticate(
        email=email, password=PASSWORD, kdf=app.extensions["wishnotes.kdf"]
    ).user_key


def _couple(app) -> dict[str, int]:
    ada, _ = register_user(app, "ada@example.com", "Ada")
    bo, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada, bo)
    return {"ada@example.com": ada, "bo@example.com": bo}


def _back_up_while_writing(app, path):
    """Write NOTES notes from a thread, and take the backup after the first ten.

    Returns (texts of every note written by id, how many were committed before the backup
    began, how many when it returned).
    """
    people = _couple(app)
    written: dict[str, str] = {}
    order: list[str] = []
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            with app.app_context():
                keys = {email: _key(app, email) for email in people}
                for index in range(NOTES):
                    email = list(people)[index % 2]
                    user = db.session.get(User, people[email])
                    text = f"backup canary note {index}"
                    note = notes.write_note(user=user, user_key=keys[email], text=text, now=now())
                    written[note.id] = text
                    order.append(note.id)
                db.session.remove()
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(order) < 10 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.01)  # waiting for the writer thread, not for a schedule
        before = len(order)
        result = app.test_cli_runner().invoke(main, ["backup", str(path)])
        during = len(order)
    finally:
        thread.join(timeout=120)
    assert not failures, failures
    assert result.exit_code == 0, result.output
    assert "Keep WISHNOTES_PEPPER" in result.output
    assert before >= 10 and len(order) == NOTES
    assert during < NOTES, "the writer finished before the backup: nothing ran concurrently"
    return written, before, during


def _every_note_opens_for_its_people(restored, written, before, during) -> None:
    with restored.app_context():
        keys = {email: _key(restored, email) for email in ("ada@example.com", "bo@example.com")}
        users = {
            email: db.session.scalar(sa.select(User).where(User.email == email)) for email in keys
        }
        stored = list(db.session.scalars(sa.select(Note)))
        assert before <= len(stored) <= during + 1  # a moment between the two
        for note in stored:
            for email, user in users.items():
                assert user.id in (note.sender_id, note.recipient_id)
                opened = notes.open_note(
                    user=user, user_key=keys[email], note_id=note.id, now=now()
                )
                assert opened.text == written[note.id]
        db.session.remove()
        db.engine.dispose()


def test_a_sqlite_backup_taken_while_notes_are_written_restores_with_every_note_opening(tmp_path):
    live = make_app(tmp_path, None, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'live.db'}")
    build_tables(live)
    path = tmp_path / "backup.sqlite3"
    written, before, during = _back_up_while_writing(live, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name("backup.sqlite3-wal").exists()  # one self-contained file
    with live.app_context():
        db.engine.dispose()

    # A fresh instance: the backup as its database, the same two secrets.
    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o700)
    shutil.copy(path, fresh / "wishnotes.sqlite3")
    restored = make_app(
        fresh, None, SQLALCHEMY_DATABASE_URI=f"sqlite:///{fresh / 'wishnotes.sqlite3'}"
    )
    _every_note_opens_for_its_people(restored, written, before, during)


def test_backup_refuses_to_overwrite_and_names_a_missing_folder(app, tmp_path):
    runner = app.test_cli_runner()
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"")
    refused = runner.invoke(main, ["backup", str(taken)])
    assert refused.exit_code == 1 and "exists already" in refused.output
    missing = runner.invoke(main, ["backup", str(tmp_path / "nowhere" / "b.db")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_backup_without_pg_dump_says_how(app, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump here
    app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://wishnotes@db.internal/wishnotes"
    result = app.test_cli_runner().invoke(main, ["backup", str(tmp_path / "b.dump")])
    assert result.exit_code == 1
    assert "pg_dump is not on PATH" in result.output and "--format=custom" in result.output
    assert not (tmp_path / "b.dump").exists() and not (tmp_path / "b.dump.partial").exists()


@pytest.mark.skipif(
    not POSTGRES_URL or not shutil.which("pg_restore"), reason="needs PostgreSQL and pg_dump"
)
def test_a_pg_dump_backup_taken_while_notes_are_written_restores_with_every_note_opening(
    tmp_path, postgres_engine
):
    live = make_app(tmp_path, postgres_engine)
    build_tables(live)
    path = tmp_path / "backup.dump"
    written, before, during = _back_up_while_writing(live, path)
    with live.app_context():
        db.engine.dispose()

    url = sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    name = f"wishnotes_restore_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        target = url.set(database=name, drivername="postgresql")
        subprocess.run(
            ["pg_restore", "--no-owner", "--dbname", target.render_as_string(False), str(path)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        restored = make_app(
            tmp_path / "fresh", None, SQLALCHEMY_DATABASE_URI=target.render_as_string(False)
        )
        _every_note_opens_for_its_people(restored, written, before, during)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
