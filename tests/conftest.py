"""Shared fixtures: an app on a fresh database (SQLite, or PostgreSQL when one is given)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from wishnotes import accounts, create_app, pairing
from wishnotes.extensions import db

from .smtp import smtp_server  # noqa: F401 - a fixture: a real SMTP server on 127.0.0.1

# Set by .ci/run to a throwaway database on the local PostgreSQL server.
POSTGRES_URL = os.environ.get("WISHNOTES_TEST_DATABASE_URL")
SECRET_KEY = "test-secret-key-" + "s" * 32
PEPPER = "test-pepper-" + "p" * 32
PASSWORD = "a quiet garden at dusk"
CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|'
    r'type="hidden" name="csrf_token" value="([^"]+)"'
)


def pytest_report_header(config) -> str:
    return f"database: {'PostgreSQL' if POSTGRES_URL else 'SQLite'}"


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[sa.Engine | None]:
    """One engine for the session when testing on PostgreSQL; schema built once."""
    if not POSTGRES_URL:
        yield None
        return
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as connection:  # fail loudly, never skip, when the server is missing
        connection.execute(sa.text("SELECT 1"))
    yield engine
    engine.dispose()


def make_app(tmp_path, postgres_engine, **overrides):
    """Build a test app with CSRF on, the KDF at its floor and a clean database."""
    settings = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": SECRET_KEY,
        "PEPPER": PEPPER,
        "SERVER_NAME": "wishnotes.test",
        "BASE_URL": "http://wishnotes.test",
        "SQLALCHEMY_DATABASE_URI": POSTGRES_URL or f"sqlite:///{tmp_path / 'test.sqlite3'}",
    }
    settings.update(overrides)
    return create_app(settings)


def reset_database(app) -> None:
    """Create every table, emptying them first on a shared PostgreSQL database."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.create_all()
            names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            db.session.commit()
        else:
            db.create_all()


@pytest.fixture
def app(tmp_path, postgres_engine):
    app = make_app(tmp_path, postgres_engine)
    reset_database(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def now() -> datetime:
    return datetime.now(UTC)


def csrf_token(client, url: str) -> str:
    """Fetch a page and return the CSRF token in its first form."""
    page = client.get(url).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no CSRF token on {url}"
    return match.group(1) or match.group(2)


def post_form(client, url: str, data: dict | None = None, *, token_from: str | None = None, **kw):
    """POST a form the way a browser would: with the CSRF token of the page it came from."""
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client, token_from or url))
    return client.post(url, data=data, **kw)


def register_user(app, email: str = "ada@example.com", name: str = "Ada", *, confirm: bool = True):
    """Create a user through the service (confirming the recovery kit) and return it."""
    with app.app_context():
        reg = accounts.register(
            email=email,
            display_name=name,
            password=PASSWORD,
            kdf=app.extensions["wishnotes.kdf"],
            now=now(),
        )
        if confirm:
            reg.user.recovery_confirmed_at = now()
            db.session.commit()
        return reg.user.id, reg.recovery_key


def login(client, email: str = "ada@example.com", password: str = PASSWORD, **extra):
    """Sign in through the login form."""
    return post_form(client, "/login", {"email": email, "password": password, **extra})


def pair_users(app, first_id: int, second_id: int) -> int:
    """Pair two users through the invite service; return the pair id."""
    from wishnotes.models import User

    with app.app_context():
        first, second = db.session.get(User, first_id), db.session.get(User, second_id)
        kdf = app.extensions["wishnotes.kdf"]
        first_key = accounts.authenticate(email=first.email, password=PASSWORD, kdf=kdf).user_key
        second_key = accounts.authenticate(email=second.email, password=PASSWORD, kdf=kdf).user_key
        token = pairing.create_invite(user=first, user_key=first_key, now=now())
        return pairing.accept_invite(user=second, token=token, now=now(), user_key=second_key).id
