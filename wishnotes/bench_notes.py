"""`wishnotes bench notes`: what opening, sending and listing notes cost over real HTTP.

Measured in one run against a baseline page of the same app that renders a template after one
database read (mounted only when the app config has BENCH=True). The goals: opening a note at
least 0.6x the baseline's throughput, sending one at least 0.5x, and an inbox of 200 notes in
less than twice the time of one note page. Figures are printed, never asserted.

The shared pieces (throwaway instance, waitress on 127.0.0.1, HTTP client, bounded loops) come
from `wishnotes.bench`; this module adds the `notes` command to its `bench` group.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import click
from flask import Blueprint, Flask, render_template_string
from flask_login import current_user, login_required

from wishnotes import accounts, notes, pairing
from wishnotes.bench import (
    PASSWORD,
    Browser,
    bench_app,
    make_user,
    print_table,
    run_parallel,
    serving,
)
from wishnotes.clock import now
from wishnotes.extensions import db
from wishnotes.models import Pair, User

GOAL_OPEN = 0.6
GOAL_SEND = 0.5
GOAL_INBOX = 2.0
TEXT = (
    "I would like us to take the long way home on Sunday, slowly, and stop for a coffee "
    "where we used to. It would please me if we left our phones in the bag for the afternoon."
)
_BASELINE_PAGE = """{% extends "base.html" %}{% block content %}
<h1>Baseline</h1><p>Paired since {{ pair.created_at.strftime('%d %b %Y') }}.</p>
{% endblock %}"""
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def attach_baseline(app: Flask) -> None:
    """Mount /bench/baseline: one database read, then a template through base.html."""
    if not app.config.get("BENCH"):
        raise RuntimeError("the baseline page exists only in an app configured with BENCH=True")
    bp = Blueprint("bench", __name__, url_prefix="/bench")

    @bp.get("/baseline")
    @login_required
    def baseline():
        pair = db.session.get(Pair, current_user.pair_id)
        return render_template_string(_BASELINE_PAGE, pair=pair)

    app.register_blueprint(bp)


@dataclass
class Measured:
    """Throughput and per-request latency of one scenario."""

    count: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def median_ms(self) -> float:
        return median(self.latencies) * 1000 if self.latencies else 0.0

    def row(self, label: str) -> tuple[str, str]:
        return (
            label,
            f"{self.per_second:8.1f} /s   median {self.median_ms:6.1f} ms  "
            f"({self.count} in {self.seconds:.1f} s)",
        )


def _measure(request, *, browsers, threads: int, limit: int, seconds: float) -> Measured:
    """Run `request(browser)` from `threads` threads, each with its own signed-in browser."""
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()
    handed_out = iter(range(threads))

    def work() -> None:
        if not hasattr(local, "browser"):
            with lock:
                local.browser = browsers[next(handed_out)]
        start = time.perf_counter()
        request(local.browser)
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)

    rate = run_parallel(work, threads=threads, limit=limit, seconds=seconds)
    return Measured(count=rate.count, seconds=rate.seconds, latencies=latencies)


def _expect(browser: Browser, method: str, path: str, status: int, form=None) -> None:
    got, _ = browser.request(method, path, form)
    if got != status:
        raise RuntimeError(f"{method} {path} gave {got}, expected {status}")


def _setup(app: Flask, note_count: int) -> str:
    """Make a paired couple through the services and `note_count` notes to Ada; return one id."""
    ada_id = make_user(app, "ada@bench.example", "Ada")
    bo_id = make_user(app, "bo@bench.example", "Bo")
    kdf = app.extensions["wishnotes.kdf"]
    with app.app_context():
        ada, bo = db.session.get(User, ada_id), db.session.get(User, bo_id)
        ada_key = accounts.authenticate(email=ada.email, password=PASSWORD, kdf=kdf).user_key
        token = pairing.create_invite(user=ada, user_key=ada_key, now=now())
        bo_key = accounts.authenticate(email=bo.email, password=PASSWORD, kdf=kdf).user_key
        pairing.accept_invite(user=bo, token=token, now=now(), user_key=bo_key)
        note_id = ""
        for _ in range(note_count):
            note_id = notes.write_note(user=bo, user_key=bo_key, text=TEXT, now=now()).id
    return note_id


def bench_notes(
    *,
    limit: int,
    seconds: float,
    threads: int,
    note_count: int,
    round_count: int = 3,
    database_url: str | None = None,
) -> dict[str, Measured]:
    """Measure the four scenarios over HTTP; print a table and return the figures."""
    with tempfile.TemporaryDirectory(prefix="wishnotes-bench-notes-") as folder:
        app = bench_app(database_url, Path(folder), BENCH=True)
        attach_baseline(app)
        note_id = _setup(app, note_count)
        with serving(app) as port:
            browsers = [Browser(port) for _ in range(threads)]
            tokens = []
            for browser in browsers:
                browser.submit("/login", {"email": "ada@bench.example", "password": PASSWORD})
                _, page = browser.request("GET", "/notes/new")
                tokens.append(_CSRF.search(page).group(1))
            token_of = dict(zip(map(id, browsers), tokens, strict=True))

            def baseline(browser: Browser) -> None:
                _expect(browser, "GET", "/bench/baseline", 200)

            def open_note(browser: Browser) -> None:
                _expect(browser, "GET", f"/notes/{note_id}", 200)

            def inbox(browser: Browser) -> None:
                _expect(browser, "GET", "/notes/", 200)

            def send(browser: Browser) -> None:
                # The redirect target would show (and so drop) the flash; keep the cookie as is.
                cookies = dict(browser.cookies)
                form = {"body": TEXT, "csrf_token": token_of[id(browser)]}
                _expect(browser, "POST", "/notes/new", 302, form)
                browser.cookies = cookies

            scenarios = {"baseline": baseline, "open": open_note, "inbox": inbox, "send": send}
            run = {"threads": threads, "browsers": browsers}
            for warm in scenarios.values():
                _measure(warm, limit=threads * 3, seconds=seconds, **run)
            # Interleaved rounds, best round kept: a busy machine disturbs every scenario alike.
            rounds: dict[str, list[Measured]] = {name: [] for name in scenarios}
            for _ in range(round_count):
                for name, request in scenarios.items():
                    share = max(1, limit // round_count)
                    rounds[name].append(
                        _measure(request, limit=share, seconds=seconds / round_count, **run)
                    )
            results = {
                name: max(found, key=lambda m: m.per_second) for name, found in rounds.items()
            }
        with app.app_context():
            db.engine.dispose()
    _report(
        results,
        threads=threads,
        note_count=note_count,
        round_count=round_count,
        database_url=database_url,
    )
    return results


def _report(
    results: dict[str, Measured], *, threads: int, note_count: int, round_count: int, database_url
) -> None:
    base = results["baseline"]
    open_ratio = results["open"].per_second / base.per_second
    send_ratio = results["send"].per_second / base.per_second
    inbox_ratio = results["open"].per_second / results["inbox"].per_second

    def verdict(ok: bool) -> str:
        return "ok" if ok else "BELOW GOAL"

    database = "PostgreSQL" if database_url else "SQLite"
    click.echo(
        f"notes benchmark: {threads} client threads, {os.cpu_count()} CPUs, {database}, "
        f"inbox of {note_count} notes, best of {round_count} interleaved rounds"
    )
    print_table(
        [
            results["baseline"].row("baseline page (1 read + template)"),
            results["open"].row("open one note"),
            results["inbox"].row(f"inbox of {note_count}"),
            results["send"].row("send a note (POST)"),
            (
                f"open / baseline (goal >= {GOAL_OPEN})",
                f"{open_ratio:8.2f}  {verdict(open_ratio >= GOAL_OPEN)}",
            ),
            (
                f"send / baseline (goal >= {GOAL_SEND})",
                f"{send_ratio:8.2f}  {verdict(send_ratio >= GOAL_SEND)}",
            ),
            (
                f"inbox time / note time (goal < {GOAL_INBOX})",
                f"{inbox_ratio:8.2f}  {verdict(inbox_ratio < GOAL_INBOX)}",
            ),
        ]
    )


@click.command("notes")
@click.option(
    "--requests",
    "limit",
    default=900,
    show_default=True,
    type=click.IntRange(1, 20000),
    help="Requests per scenario, split over the rounds.",
)
@click.option(
    "--seconds",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 600),
    help="Time bound per scenario, split over the rounds.",
)
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--notes", "note_count", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option("--rounds", "round_count", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--database-url", default=None, help="Benchmark on this database (tables reset).")
def notes_command(
    limit: int,
    seconds: float,
    threads: int,
    note_count: int,
    round_count: int,
    database_url: str | None,
) -> None:
    """Open, send and inbox throughput over HTTP against a baseline page, in one run."""
    bench_notes(
        limit=limit,
        seconds=seconds,
        threads=threads,
        note_count=note_count,
        round_count=round_count,
        database_url=database_url,
    )


if __name__ == "__main__":
    notes_command()
