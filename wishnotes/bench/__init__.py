"""`wishnotes bench`: throughput figures measured on this machine, printed, never asserted.

Each benchmark builds a throwaway instance (SQLite by default, or --database-url), serves the app
in a process of its own (gunicorn where installed, waitress otherwise; wishnotes.bench.server)
on 127.0.0.1 and drives it over real HTTP from this process. Every loop is bounded in count and
time. Only the `wishnotes bench` command imports this package; the app never does.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import click
import sqlalchemy as sa
from flask import Flask

from wishnotes import accounts, create_app, database
from wishnotes.bench.server import served
from wishnotes.clock import now
from wishnotes.crypto import derive_login_keys, new_salt  # by name: see _add_commands
from wishnotes.extensions import db
from wishnotes.models import PepperCheck

PASSWORD = "bench password that is long enough"  # noqa: S105 - throwaway benchmark users
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(page: str) -> str | None:
    """Return the CSRF token of the form on `page`, or None when it has no form."""
    match = _CSRF.search(page)
    return match.group(1) if match else None


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
    if overrides.get("SMTP_HOST") and "MAIL_FOLDER" not in overrides:
        # As WISHNOTES_SMTP_HOST does for development: naming a server sends to it instead of
        # writing each email to the instance's mail folder.
        overrides["MAIL_FOLDER"] = None
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


class Browser:
    """A minimal HTTP client with a cookie jar, CSRF handling and a kept-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self._connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, form: dict | None = None
    ) -> tuple[int, str, http.client.HTTPMessage]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):  # a kept-alive connection the server closed is opened again
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                text = response.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        if response.will_close:
            self.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, text, response.headers

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def clone(self) -> Browser:
        """Another client signed in as the same person (same cookies, its own connection)."""
        twin = Browser(self.port)
        twin.cookies = dict(self.cookies)
        return twin

    def submit(self, path: str, form: dict, *, expect: int = 302) -> str:
        """GET a form page, then POST it with its CSRF token; return the POST response body."""
        status, page, _ = self.request("GET", path)
        match = _CSRF.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"GET {path} gave {status} without a form")
        status, body, _ = self.request("POST", path, {**form, "csrf_token": match.group(1)})
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

        salt = new_salt()

        def one_kdf() -> None:
            derive_login_keys(PASSWORD, salt=salt, params=kdf.params, pepper=kdf.pepper)

        picker = iter(range(10**9))

        def one_login() -> None:
            browser = Browser(port)
            email = emails[next(picker) % len(emails)]
            browser.submit("/login", {"email": email, "password": PASSWORD})

        # Raw rate measured before and after the HTTP run; the better one is the bar to meet.
        run_parallel(one_kdf, threads=threads, limit=threads * 2, seconds=seconds)  # warm-up
        raw_before = run_parallel(one_kdf, threads=threads, limit=limit, seconds=seconds)
        with served(app) as (port, _):
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


def _add_commands() -> None:
    # Imported here: each module builds on the shared pieces above. Each import also sets the
    # submodule as a global of this package (wishnotes.bench.crypto as `crypto`, ...), so no
    # module-level name here may share a submodule's name.
    from wishnotes.bench.crypto import crypto_command
    from wishnotes.bench.emails import bench_emails
    from wishnotes.bench.history import history_command
    from wishnotes.bench.load import load_command, storm_command
    from wishnotes.bench.notes import notes_command
    from wishnotes.bench.pages import pages
    from wishnotes.bench.relay import bench_relay

    commands = (notes_command, bench_emails, pages, load_command, storm_command)
    for command in (*commands, history_command, crypto_command, bench_relay):
        bench.add_command(command)


_add_commands()
