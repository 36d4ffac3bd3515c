"""Two notes sent to one person at once do not wait for each other (PostgreSQL row locks)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from wishnotes import accounts, notes, outbox
from wishnotes.extensions import db
from wishnotes.models import Note, OutboxEmail, User

from .conftest import PASSWORD, POSTGRES_URL, now, pair_users, register_user

HOLD = 5.0  # how long the first send keeps its transaction open, at most


@pytest.mark.skipif(not POSTGRES_URL, reason="row locks are PostgreSQL's; SQLite has one writer")
def test_a_send_does_not_wait_for_another_send_to_the_same_person(app):
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    moment = now()
    with app.app_context():
        ada = db.session.get(User, ada_id)
        key = accounts.authenticate(
            email=ada.email, password=PASSWORD, kdf=app.extensions["wishnotes.kdf"]
        ).user_key
        notes.write_note(user=ada, user_key=key, text="first, pins Bo's keys", now=moment)
    # Later, when a new notice is due: both sends below try to claim it.
    later = moment + timedelta(hours=7)

    first_open = threading.Event()
    second_done = threading.Event()
    first_committed = threading.Event()
    errors: list[BaseException] = []
    timings: dict[str, float] = {}

    def first_send() -> None:
        try:
            with app.app_context():
                session = db.session()
                commit = session.commit

                def held_commit() -> None:
                    # Everything the send does before its commit is done: hold it open.
                    first_open.set()
                    second_done.wait(timeout=HOLD)
                    commit()
                    first_committed.set()

                session.commit = held_commit
                writer = db.session.get(User, ada_id)
                notes.write_note(user=writer, user_key=key, text="from the phone", now=later)
        except BaseException as exc:
            errors.append(exc)
            first_open.set()

    def second_send() -> None:
        try:
            assert first_open.wait(timeout=30)
            with app.app_context():
                writer = db.session.get(User, ada_id)
                started = time.perf_counter()
                notes.write_note(
                    user=writer,
                    user_key=key,
                    text="from the laptop",
                    now=later + timedelta(seconds=1),
                )
                timings["second"] = time.perf_counter() - started
                timings["before_first_commit"] = not first_committed.is_set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            second_done.set()

    threads = [threading.Thread(target=first_send), threading.Thread(target=second_send)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert timings["before_first_commit"], "the second send waited for the first to commit"
    assert timings["second"] < HOLD / 2
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Note)) == 3
        notices = db.session.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.kind == outbox.NOTE_NOTICE)
        )
        assert notices == 2  # the first note's, and one for the two sent at once
