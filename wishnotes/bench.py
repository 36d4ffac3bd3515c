"""`wishnotes bench`: throughput figures measured on this machine, printed, never asserted.

Each benchmark builds a throwaway instance (SQLite by default, or --database-url), serves the app
with waitress on 127.0.0.1 and drives it over real HTTP. Every loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import click
import sqlalchemy as sa
from flask import Flask

from wishnotes import accounts, create_app, crypto, database
from wishnotes.clock import now
from wishnotes.extensions import db
from wishnotes.models import PepperCheck

PASSWORD = "bench password that is long enough"  # noqa: S105 - throwaway benchmark users
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@click.group("bench")
def bench() -> None:
    """Measure throughput on this machine (prints figures; runs no tests)."""


# --- shared pieces -------------------------------------------------------------------------


@dataclass
class Rate:
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def run_parallel(work: Callable[[], None], *, threads: int, limit: int, seconds: float) -> Rate:
    """Call `work` from `threads` threads until `limit` calls or `seconds` have passed."""
    lock = threading.Lock()
    done = 0
    deadline = time.perf_counter() + seconds
    errors: list[BaseException] = []

    def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            with lock:
                if done >= limit:
                    return
                done += 1
            try:
                work()
            except BaseException as exc:
                errors.append(exc)
                return

    start = time.perf_counter()
    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - start
    if errors:
        raise click.ClickException(f"benchmark request failed: {errors[0]!r}")
    return Rate(count=done, seconds=elapsed)


def bench_app(database_url: str | None, instance: Path, **overrides) -> Flask:
    """Build an app for benchmarking: production-like settings, rate limits off, fresh tables."""
    if database_url:
        # Each run has a pepper of its own: forget the check value of the previous run's.
        engine = sa.create_engine(database.normalize_url(database_url, instance_path=instance))
        with engine.begin() as connection:
            PepperCheck.__table__.drop(connection, checkfirst=True)
        engine.dispose()
    app = create_app(
        ENV="development",
        INSTANCE_PATH=str(instance),
        SECRET_KEY=secrets.token_urlsafe(48),
        PEPPER=secrets.token_urlsafe(48),
        SQLALCHEMY_DATABASE_URI=database_url,
        RATELIMIT_ENABLED=False,  # the benchmark is one client address hammering one form
        **overrides,
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


@contextmanager
def serving(app: Flask, *, threads: int = 8) -> Iterator[int]:
    """Serve `app` with waitress on a free 127.0.0.1 port for the duration of the block."""
    from waitress.server import create_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server(app, host="127.0.0.1", port=port, threads=threads, ident="bench")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        # Let the worker threads finish their last request before the sockets go away.
        server.task_dispatcher.shutdown(timeout=10)
        server.close()
        thread.join(timeout=10)


class Browser:
    """A minimal HTTP client with a cookie jar and CSRF handling, for one benchmark thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            return response.status, text
        finally:
            connection.close()

    def submit(self, path: str, form: dict, *, expect: int = 302) -> str:
        """GET a form page, then POST it with its CSRF token; return the POST response body."""
        status, page = self.request("GET", path)
        match = _CSRF.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"GET {path} gave {status} without a form")
        status, body = self.request("POST", path, {**form, "csrf_token": match.group(1)})
        if status != expect:
            raise RuntimeError(f"POST {path} gave {status}, expected {expect}")
        return body


def make_user(app: Flask, email: str, name: str = "Bench") -> int:
    """Register a user through the service, recovery kit confirmed; return its id."""
    with app.app_context():
        reg = accounts.register(
            email=email,
            display_name=name,
            password=PASSWORD,
            kdf=app.extensions["wishnotes.kdf"],
            now=now(),
        )
        reg.user.recovery_confirmed_at = now()
        db.session.commit()
        return reg.user.id


def print_table(rows: list[tuple[str, str]]) -> None:
    """Print two aligned columns."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"  {label.ljust(width)}  {value}")


# --- login ---------------------------------------------------------------------------------


@bench.command("login")
@click.option("--requests", "limit", default=120, show_default=True, type=click.IntRange(1, 5000))
@click.option("--seconds", default=30.0, show_default=True, type=click.FloatRange(1, 600))
@click.option("--threads", default=os.cpu_count() or 1, show_default=True, type=click.IntRange(1))
@click.option("--database-url", default=None, help="Benchmark on this database (tables reset).")
def bench_login(limit: int, seconds: float, threads: int, database_url: str | None) -> None:
    """Login throughput over HTTP against the raw Argon2id rate, in the same run."""
    with tempfile.TemporaryDirectory(prefix="wishnotes-bench-") as folder:
        app = bench_app(database_url, Path(folder), KDF_CONCURRENCY=threads)
        kdf = app.extensions["wishnotes.kdf"]
        emails = [f"bench{i}@example.com" for i in range(threads)]
        for email in emails:
            make_user(app, email)

        salt = crypto.new_salt()

        def one_kdf() -> None:
            crypto.derive_login_keys(PASSWORD, salt=salt, params=kdf.params, pepper=kdf.pepper)

        picker = iter(range(10**9))

        def one_login() -> None:
            browser = Browser(port)
            email = emails[next(picker) % len(emails)]
            browser.submit("/login", {"email": email, "password": PASSWORD})

        # Raw rate measured before and after the HTTP run; the better one is the bar to meet.
        run_parallel(one_kdf, threads=threads, limit=threads * 2, seconds=seconds)  # warm-up
        raw_before = run_parallel(one_kdf, threads=threads, limit=limit, seconds=seconds)
        with serving(app) as port:
            one_login()  # warm up templates and connections
            login = run_parallel(one_login, threads=threads, limit=limit, seconds=seconds)
        raw_after = run_parallel(one_kdf, threads=threads, limit=limit, seconds=seconds)
        raw = max(raw_before, raw_after, key=lambda rate: rate.per_second)

    ratio = login.per_second / raw.per_second
    click.echo(
        f"login benchmark: Argon2id {kdf.params.memory_kib} KiB x {kdf.params.iterations}, "
        f"{threads} threads, {os.cpu_count()} CPUs, rate limits off"
    )
    print_table(
        [
            ("raw Argon2id", f"{raw.per_second:8.2f} /s  ({raw.count} in {raw.seconds:.1f} s)"),
            (
                "HTTP login (GET form + POST)",
                f"{login.per_second:8.2f} /s  ({login.count} in {login.seconds:.1f} s)",
            ),
            ("ratio (goal >= 0.90)", f"{ratio:8.2f}  {'ok' if ratio >= 0.9 else 'BELOW GOAL'}"),
        ]
    )
