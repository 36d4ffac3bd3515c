"""Redis and the database cut and restored under a running app, through a real TCP proxy.

Redis: WISHNOTES_TEST_REDIS_URL (CI sets it), else the local Redis; when none answers the Redis
tests are skipped, except under CI=true, where they fail. The database: PostgreSQL behind the
proxy when WISHNOTES_TEST_DATABASE_URL is set; on SQLite the database file's folder is moved
away (new connections cannot open it) and moved back.
"""

from __future__ import annotations

import html
import os
import threading
import time
import uuid

import pytest
import redis
import sqlalchemy as sa

from wishnotes.extensions import db
from wishnotes.models import Note

from .conftest import (
    CSRF_RE,
    PASSWORD,
    POSTGRES_URL,
    csrf_token,
    login,
    make_app,
    pair_users,
    post_form,
    register_user,
    reset_database,
)
from .proxy import proxy_for

REDIS_URL = os.environ.get("WISHNOTES_TEST_REDIS_URL") or "redis://127.0.0.1:6379/4"


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} does not answer: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def redis_proxy(redis_url):
    with proxy_for(redis_url) as proxy:
        yield proxy


def _limit_keys() -> list[bytes]:
    # Flask-Limiter's keys; its prefix is not per app (the extension object outlives apps).
    return list(redis.Redis.from_url(REDIS_URL).scan_iter("LIMITS:*"))


def _forget_limits() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in _limit_keys():
        client.delete(key)


@pytest.fixture
def limited_app(tmp_path, postgres_engine, redis_proxy):
    """An app whose rate limits (and job queue) live in Redis behind the proxy."""
    _forget_limits()
    app = make_app(
        tmp_path,
        postgres_engine,
        REDIS_URL=redis_proxy.url_for(REDIS_URL),
        HUEY_NAME=f"wishnotes-test-{uuid.uuid4().hex[:12]}",
        RATELIMIT_ENABLED=True,
        LOGIN_LIMIT_PER_ACCOUNT="3 per minute",
    )
    reset_database(app)
    yield app
    _forget_limits()


def test_sign_in_registration_and_unlock_work_while_redis_is_down(limited_app, redis_proxy):
    register_user(limited_app)
    client = limited_app.test_client()
    redis_proxy.cut()

    signed_in = login(client)
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    unlocked = post_form(client, "/unlock", {"password": PASSWORD})
    assert unlocked.status_code == 302
    other = limited_app.test_client()
    registered = post_form(
        other, "/register", {"email": "bo@example.com", "display_name": "Bo", "password": PASSWORD}
    )
    assert registered.status_code == 200
    assert "recovery" in registered.get_data(as_text=True).lower()


def test_limits_hold_in_the_process_while_redis_is_down_and_return_to_redis(
    limited_app, redis_proxy
):
    register_user(limited_app)
    client = limited_app.test_client()
    redis_proxy.cut()
    codes = [login(client, password="not the password").status_code for _ in range(4)]
    assert codes == [422, 422, 422, 429]  # "3 per minute" per account, counted in memory

    redis_proxy.restore()
    assert _limit_keys() == []  # nothing reached Redis during the outage
    deadline = time.monotonic() + 60  # Flask-Limiter looks at Redis again with a backoff
    fresh = limited_app.test_client()
    while not _limit_keys():
        assert time.monotonic() < deadline, "the limits never went back to Redis"
        login(fresh, email="nobody@example.com", password="not the password")
        time.sleep(0.5)


def test_a_redis_that_hangs_costs_a_request_seconds_not_forever(limited_app, redis_proxy):
    """Redis accepts the connection and then says nothing: the job queue gives up in time."""
    register_user(limited_app)
    client = limited_app.test_client()
    client.get("/forgot")  # connections to Redis are open and pooled before it hangs
    redis_proxy.stall()
    answered: dict = {}

    def ask_for_a_reset() -> None:
        # Queues the reset email, then wakes the worker through Redis (after the commit).
        answered["response"] = post_form(client, "/forgot", {"email": "ada@example.com"})

    asking = threading.Thread(target=ask_for_a_reset, daemon=True)
    started = time.monotonic()
    asking.start()
    asking.join(timeout=40)
    assert not asking.is_alive(), "the request still waits on a Redis that does not answer"
    assert answered["response"].status_code in (200, 302)
    assert time.monotonic() - started < 20


# --- the database -------------------------------------------------------------------------

CANARY = "canary: I would like a slow evening, just the two of us"


class SqliteOutage:
    """The SQLite file out of reach: its folder moved away and pooled connections closed."""

    def __init__(self, app, folder) -> None:
        self.app, self.folder = app, folder
        self.away = folder.with_name(folder.name + "-away")

    def cut(self) -> None:
        self.folder.rename(self.away)
        with self.app.app_context():
            db.engine.dispose()

    def restore(self) -> None:
        self.away.rename(self.folder)


@pytest.fixture
def outage_app(tmp_path, postgres_engine):
    """(app, outage): an app whose database can be cut and restored while it runs."""
    if POSTGRES_URL:
        with proxy_for(POSTGRES_URL) as proxy:
            app = make_app(
                tmp_path, postgres_engine, SQLALCHEMY_DATABASE_URI=proxy.url_for(POSTGRES_URL)
            )
            reset_database(app)
            yield app, proxy
            proxy.restore()
            with app.app_context():
                db.engine.dispose()
        return
    folder = tmp_path / "db"
    folder.mkdir()
    app = make_app(
        tmp_path, postgres_engine, SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder / 'wn.sqlite3'}"
    )
    reset_database(app)
    outage = SqliteOutage(app, folder)
    yield app, outage
    if outage.away.exists():
        outage.restore()
    with app.app_context():
        db.engine.dispose()


def _signed_in_pair(app):
    ada, _ = register_user(app)
    bo, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada, bo)
    client = app.test_client()
    assert login(client).status_code == 302
    return client


def test_a_signed_in_person_gets_a_calm_503_while_the_database_is_down(outage_app, caplog):
    app, outage = outage_app
    client = _signed_in_pair(app)
    assert client.get("/notes/").status_code == 200
    outage.cut()
    for path in ("/", "/notes/", "/settings/"):
        page = client.get(path)
        assert page.status_code == 503, path
        body = page.get_data(as_text=True)
        assert "Internal Server Error" not in body
        assert "try again in a moment" in body
        assert page.headers["Retry-After"]
    health = client.get("/healthz")  # sent with the session and key cookies
    assert health.status_code == 503
    assert health.get_json() == {"status": "error", "database": "error"}
    assert "Traceback" not in caplog.text

    outage.restore()  # no restart: the next requests find the database again
    assert client.get("/notes/").status_code == 200
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}


def test_a_note_sent_while_the_database_is_down_comes_back_in_the_form(outage_app, caplog):
    app, outage = outage_app
    client = _signed_in_pair(app)
    token = csrf_token(client, "/notes/new")
    outage.cut()
    sent = client.post(
        "/notes/new", data={"csrf_token": token, "title": "For tonight", "body": CANARY}
    )
    assert sent.status_code == 503
    page = html.unescape(sent.get_data(as_text=True))
    assert CANARY in page and 'value="For tonight"' in page
    assert "was not sent" in page
    assert CANARY not in caplog.text

    outage.restore()
    again = {"csrf_token": CSRF_RE.search(page).group(1) or CSRF_RE.search(page).group(2)}
    again.update(title="For tonight", body=CANARY)
    assert client.post("/notes/new", data=again).status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Note)) == 1
