"""`wishnotes bench notes`: what opening, sending and listing notes cost over real HTTP.

Measured in one run against a baseline page served by the same server (a template file after
one database read; wishnotes.bench.server). The goals: opening a note at least 0.6x the
baseline's throughput, sending one at least 0.5x, and an inbox of 200 notes in less than twice
the time of one note page. First opens (a note never opened before, which marks it read) are
measured apart from opening a note again. Rounds are of equal duration and interleaved; each
figure is the median of the rounds. Figures are printed, never asserted.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import click
from flask import Flask

from wishnotes import accounts, notes, pairing
from wishnotes.bench import PASSWORD, Browser, bench_app, csrf_token, make_user, print_table
from wishnotes.bench.load import SKIPPED, Figures, Round, _outcome, run_round
from wishnotes.bench.server import served
from wishnotes.clock import now
from wishnotes.extensions import db
from wishnotes.models import User

GOAL_OPEN = 0.6
GOAL_SEND = 0.5
GOAL_INBOX = 2.0
TEXT = (
    "I would like us to take the long way home on Sunday, slowly, and stop for a coffee "
    "where we used to. It would please me if we left our phones in the bag for the afternoon."
)


class Measured(Figures):
    """Figures with the one-line summary this table prints."""

    def row(self, label: str) -> tuple[str, str]:
        return (
            label,
            f"{self.per_second:8.1f} /s   p50 {self.percentile(0.5):6.1f} ms  "
            f"p95 {self.percentile(0.95):6.1f} ms  (median of {len(self.rounds)} rounds)",
        )


def _setup(app: Flask, note_count: int) -> list[str]:
    """Make a paired couple through the services and `note_count` notes to Ada; return ids."""
    ada_id = make_user(app, "ada@bench.example", "Ada")
    bo_id = make_user(app, "bo@bench.example", "Bo")
    kdf = app.extensions["wishnotes.kdf"]
    with app.app_context():
        ada, bo = db.session.get(User, ada_id), db.session.get(User, bo_id)
        ada_key = accounts.authenticate(email=ada.email, password=PASSWORD, kdf=kdf).user_key
        token = pairing.create_invite(user=ada, user_key=ada_key, now=now())
        bo_key = accounts.authenticate(email=bo.email, password=PASSWORD, kdf=kdf).user_key
        pairing.accept_invite(user=bo, token=token, now=now(), user_key=bo_key)
        return [
            notes.write_note(user=bo, user_key=bo_key, text=TEXT, now=now()).id
            for _ in range(note_count)
        ]


def bench_notes(
    *,
    seconds: float,
    threads: int,
    note_count: int,
    round_count: int = 5,
    database_url: str | None = None,
) -> dict[str, Measured]:
    """Measure the scenarios over HTTP; print a table and return the figures."""
    with tempfile.TemporaryDirectory(prefix="wishnotes-bench-notes-") as folder:
        app = bench_app(database_url, Path(folder))
        note_ids = _setup(app, note_count)
        unread = list(reversed(note_ids))  # first opens take these, each once
        again = note_ids[0]
        with served(app) as (port, described):
            first = Browser(port)
            first.submit("/login", {"email": "ada@bench.example", "password": PASSWORD})
            browsers = [first.clone() for _ in range(threads)]
            token = csrf_token(first.request("GET", "/notes/new")[1])

            def get(i: int, path: str) -> str:
                return _outcome(browsers[i].request("GET", path)[0], 200)

            def first_open(i: int) -> str:
                try:
                    note_id = unread.pop()
                except IndexError:  # every note has been opened: this round ends short
                    time.sleep(0.005)
                    return SKIPPED
                return get(i, f"/notes/{note_id}")

            def send(i: int) -> str:
                browser = browsers[i]
                cookies = dict(browser.cookies)  # the redirect target would spend the flash
                status = browser.request("POST", "/notes/new", {"body": TEXT, "csrf_token": token})
                browser.cookies = cookies
                return _outcome(status[0], 302)

            scenarios = {
                "baseline": lambda i: get(i, "/bench/baseline"),
                "open": lambda i: get(i, f"/notes/{again}"),
                "first_open": first_open,
                "inbox": lambda i: get(i, "/notes/"),
                "send": send,
            }
            for name, request in scenarios.items():  # warm-up, first opens spared
                if name != "first_open":
                    run_round(request, clients=threads, seconds=min(1.0, seconds))
            rounds: dict[str, list[Round]] = {name: [] for name in scenarios}
            for _ in range(round_count):
                for name, request in scenarios.items():
                    rounds[name].append(run_round(request, clients=threads, seconds=seconds))
            results = {name: Measured(found) for name, found in rounds.items()}
            for browser in browsers:
                browser.close()
        with app.app_context():
            db.engine.dispose()
    _report(
        results,
        threads=threads,
        note_count=note_count,
        round_count=round_count,
        database_url=database_url,
        described=described,
    )
    return results


def _report(
    results: dict[str, Measured],
    *,
    threads: int,
    note_count: int,
    round_count: int,
    database_url,
    described: str,
) -> None:
    base = results["baseline"]
    open_ratio = results["open"].per_second / base.per_second
    send_ratio = results["send"].per_second / base.per_second
    inbox_ratio = results["open"].per_second / results["inbox"].per_second

    def verdict(ok: bool) -> str:
        return "ok" if ok else "BELOW GOAL"

    database = "PostgreSQL" if database_url else "SQLite"
    click.echo(
        f"notes benchmark: {described}, {threads} client threads, {os.cpu_count()} CPUs, "
        f"{database}, inbox of {note_count} notes, median of {round_count} interleaved rounds"
    )
    print_table(
        [
            results["baseline"].row("baseline page (1 read + template)"),
            results["open"].row("open a note again"),
            results["first_open"].row("open a note for the first time"),
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
    "--seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.1, 120),
    help="Duration of one round of one scenario.",
)
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--notes", "note_count", default=400, show_default=True, type=click.IntRange(1, 5000))
@click.option("--rounds", "round_count", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--database-url", default=None, help="Benchmark on this database (tables reset).")
def notes_command(
    seconds: float, threads: int, note_count: int, round_count: int, database_url: str | None
) -> None:
    """Open, send and inbox throughput over HTTP against a baseline page, in one run."""
    bench_notes(
        seconds=seconds,
        threads=threads,
        note_count=note_count,
        round_count=round_count,
        database_url=database_url,
    )
