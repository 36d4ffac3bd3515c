"""A changed or lost pepper is named at start, instead of every password seeming wrong."""

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from wishnotes import server_secrets
from wishnotes.cli import main
from wishnotes.extensions import db
from wishnotes.models import PepperCheck

from .conftest import PEPPER, POSTGRES_URL, SECRET_KEY, make_app, register_user, reset_database

OTHER_PEPPER = "another-pepper-" + "q" * 32


@pytest.fixture
def started(tmp_path, postgres_engine):
    """An instance whose database has its tables and has been started once with PEPPER."""
    app = make_app(tmp_path, postgres_engine)
    reset_database(app)
    register_user(app)
    started = make_app(tmp_path, postgres_engine)  # the first start with the tables in place
    yield started
    for built in (app, started):
        with built.app_context():
            db.engine.dispose()


def test_the_first_start_records_a_check_value_and_never_the_pepper(started):
    with started.app_context():
        stored = db.session.scalar(select(PepperCheck.check_value))
    assert stored == server_secrets.pepper_check_value(PEPPER.encode())
    assert PEPPER.encode() not in stored and len(stored) == 32


def test_a_changed_pepper_refuses_to_start_and_says_to_restore_it(started, tmp_path):
    with pytest.raises(server_secrets.PepperMismatch) as refused:
        make_app(tmp_path, None, PEPPER=OTHER_PEPPER)
    message = str(refused.value)
    assert "WISHNOTES_PEPPER" in message and "Restore" in message and "backup" in message
    assert OTHER_PEPPER not in message and PEPPER not in message
    with make_app(tmp_path, None).app_context():  # the right pepper still starts
        db.engine.dispose()


def test_the_cli_refuses_a_changed_pepper_with_the_same_message(started, tmp_path):
    env = {
        "WISHNOTES_ENV": "testing",
        "WISHNOTES_INSTANCE_PATH": str(tmp_path / "instance"),
        "WISHNOTES_DATABASE_URL": POSTGRES_URL or f"sqlite:///{tmp_path / 'test.sqlite3'}",
        "WISHNOTES_SECRET_KEY": SECRET_KEY,
        "WISHNOTES_PEPPER": OTHER_PEPPER,
        "WISHNOTES_BASE_URL": "https://notes.example.org",
    }
    refused = CliRunner().invoke(main, ["emails", "run-due"], env=env)
    assert refused.exit_code == 1
    assert "WISHNOTES_PEPPER is not the pepper this database was created with" in refused.output
    assert "Restore WISHNOTES_PEPPER from your backup" in refused.output
    assert "Traceback" not in refused.output

    env["WISHNOTES_PEPPER"] = PEPPER
    runs = CliRunner().invoke(main, ["emails", "run-due"], env=env)
    assert runs.exit_code == 0, runs.output
    assert runs.output.startswith("Sent 0 emails")


def test_a_database_without_the_table_yet_starts_and_records_nothing(tmp_path):
    app = make_app(tmp_path, None, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'new.db'}")
    with app.app_context():
        db.engine.dispose()
