"""`wishnotes bench load` and `wishnotes bench storm`: the app under many clients at once.

`load`: a mixed workload (70 % inbox, 20 % open a note, 8 % send one, 2 % sign in) at several
concurrencies, next to Flask's "hello" and a "template + one read" page served by the same
server in the same run. `storm`: ordinary pages while 50 clients sign in at once, against the
same pages when nobody signs in, and sign-ins per second against the raw Argon2id rate.

Both run on a database of realistic size: a few real couples (registered and writing through
the services) among many filler couples with 50 notes each (copied rows: they cannot be opened,
but every query and index sees them). Rounds are of equal duration and interleaved, and each
figure is the median of the rounds (at least five by default), so a busy machine disturbs every
scenario alike. Every loop is bounded in count and time; everything stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import func, insert, select, text

from wishnotes import accounts, crypto, kdf, notes, pairing
from wishnotes.bench import PASSWORD, Browser, bench_app, cpu, csrf_token, make_user, print_table
from wishnotes.bench.server import has_gunicorn, served
from wishnotes.clock import now
from wishnotes.extensions import db
from wishnotes.models import Note, Pair, User

TEXT = (
    "I would like us to take the long way home on Sunday, slowly, and stop for a coffee "
    "where we used to. It would please me if we left our phones in the bag for the afternoon."
)
MIX = (("inbox", 70), ("open", 20), ("send", 8), ("sign_in", 2))
GOAL_MIXED = 0.6  # mixed workload at concurrency 32 against the "template + one read" page
GOAL_STORM_PAGES = 3.0  # pages' p95 during a sign-in storm against idle, at most
GOAL_STORM_SIGN_INS = 0.9  # sign-ins per second against the raw Argon2id rate, at least
MAX_REQUESTS_PER_ROUND = 200_000  # a bound on every loop besides its duration
OK, BUSY, ERROR, SKIPPED = "ok", "busy", "error", "skipped"  # SKIPPED: nothing left to do


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Round:
    """What one scenario did in one round of fixed duration."""

    seconds: float
    latencies: list[float] = field(default_factory=list)  # of answered requests, in seconds
    errors: int = 0
    busy: int = 0  # 503 "busy, try again": the KDF budget said no

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


@dataclass
class Figures:
    """A scenario over all its rounds: median throughput, pooled latency percentiles."""

    rounds: list[Round]

    @property
    def per_second(self) -> float:
        return statistics.median(r.per_second for r in self.rounds)

    def percentile(self, share: float) -> float:
        pooled = sorted(latency for r in self.rounds for latency in r.latencies)
        if not pooled:
            return 0.0
        return pooled[min(len(pooled) - 1, int(share * len(pooled)))] * 1000

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    @property
    def busy(self) -> int:
        return sum(r.busy for r in self.rounds)

    def row(self, label: str) -> tuple[str, str]:
        return (
            label,
            f"{self.per_second:8.1f} /s  p50 {self.percentile(0.5):7.1f}  "
            f"p95 {self.percentile(0.95):7.1f}  p99 {self.percentile(0.99):7.1f} ms  "
            f"errors {self.errors}  busy {self.busy}",
        )


def run_round(
    work: Callable[[int], str], *, clients: int, seconds: float, pace: float = 0.0
) -> Round:
    """Call `work(client)` in a loop from `clients` threads for `seconds`; count outcomes.

    With `pace`, each client starts a request every `pace` seconds at most (people reading
    pages at a steady rate) instead of one right after the other.
    """
    result = Round(seconds=seconds)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop(client: int) -> None:
        due = time.perf_counter() + pace * client / max(clients, 1)  # spread the first requests
        for _ in range(MAX_REQUESTS_PER_ROUND):
            if pace:
                time.sleep(max(0.0, min(due, deadline) - time.perf_counter()))
                due += pace
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            try:
                outcome = work(client)
            except Exception:  # a refused or dropped connection counts, it does not stop us
                outcome = ERROR
            elapsed = time.perf_counter() - started
            with lock:
                if outcome == OK:
                    result.latencies.append(elapsed)
                elif outcome == BUSY:
                    result.busy += 1
                elif outcome != SKIPPED:
                    result.errors += 1

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    result.seconds = max(seconds, time.perf_counter() - started)
    return result


def _outcome(status: int, expected: int) -> str:
    if status == expected:
        return OK
    return BUSY if status == 503 else ERROR


# --- the database --------------------------------------------------------------------------


@dataclass
class Couple:
    """A real couple: both can sign in; `received` are note ids written to the first."""

    first: str
    second: str
    received: list[str]


def seed(app: Flask, *, couples: int, filler_couples: int, notes_each: int) -> list[Couple]:
    """Register `couples` real couples with notes, then copy rows into filler couples."""
    found = []
    kdf_runner = app.extensions["wishnotes.kdf"]
    for number in range(couples):
        first, second = f"a{number}@bench.example", f"b{number}@bench.example"
        a_id, b_id = make_user(app, first, "Ada"), make_user(app, second, "Bo")
        with app.app_context():
            a, b = db.session.get(User, a_id), db.session.get(User, b_id)
            a_key = accounts.authenticate(email=first, password=PASSWORD, kdf=kdf_runner)
            token = pairing.create_invite(user=a, user_key=a_key.user_key, now=now())
            b_key = accounts.authenticate(email=second, password=PASSWORD, kdf=kdf_runner)
            pairing.accept_invite(user=b, token=token, now=now(), user_key=b_key.user_key)
            received = [
                notes.write_note(user=b, user_key=b_key.user_key, text=TEXT, now=now()).id
                for _ in range(notes_each)
            ]
        found.append(Couple(first=first, second=second, received=received))
    _add_filler(app, filler_couples, notes_each)
    return found


def _add_filler(app: Flask, pair_count: int, notes_each: int) -> None:
    """Copy the first real user and note into `pair_count` couples with `notes_each` notes."""
    with app.app_context():
        template_user = db.session.execute(select(User.__table__).limit(1)).one()._asdict()
        template_note = db.session.execute(select(Note.__table__).limit(1)).one()._asdict()
        user_id = db.session.scalar(select(func.max(User.id)))
        pair_id = db.session.scalar(select(func.max(Pair.id)))
        stamp = datetime.now(UTC)
        for start in range(0, pair_count, 100):
            pairs, users, rows = [], [], []
            for _ in range(start, min(start + 100, pair_count)):
                pair_id += 1
                first, second = user_id + 1, user_id + 2
                user_id += 2
                pairs.append(
                    {"id": pair_id, "first_user_id": first, "second_user_id": second,
                     "created_at": stamp}
                )  # fmt: skip
                for member in (first, second):
                    users.append(
                        {**template_user, "id": member, "pair_id": pair_id,
                         "email": f"filler{member}@bench.example"}
                    )  # fmt: skip
                for index in range(notes_each):
                    sender, recipient = (first, second) if index % 2 else (second, first)
                    rows.append(
                        {**template_note, "id": secrets.token_hex(16), "pair_id": pair_id,
                         "sender_id": sender, "recipient_id": recipient, "created_at": stamp,
                         "read_at": stamp if index > 2 else None}
                    )  # fmt: skip
            db.session.execute(insert(Pair), pairs)
            db.session.execute(insert(User), users)
            db.session.execute(insert(Note), rows)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":  # explicit ids leave the sequences behind
            for table in ("users", "pairs"):
                db.session.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                         f"(SELECT max(id) FROM {table}))")
                )  # fmt: skip
            db.session.commit()


def signed_in(port: int, couples: list[Couple], count: int) -> list[Browser]:
    """One signed-in browser per couple's first member, cloned to `count` clients."""
    originals = []
    for couple in couples:
        browser = Browser(port)
        browser.submit("/login", {"email": couple.first, "password": PASSWORD})
        originals.append(browser)
    return [originals[i % len(originals)].clone() for i in range(count)]


# --- the operations ------------------------------------------------------------------------


class Client:
    """The requests one simulated person makes; every method returns OK, BUSY or ERROR."""

    def __init__(self, browser: Browser, couple: Couple, rng: random.Random) -> None:
        self.browser = browser
        self.couple = couple
        self.rng = rng
        self.token: str | None = None
        self.busy_form: tuple[Browser, str] | None = None  # the form a "busy" answer showed

    def inbox(self) -> str:
        return _outcome(self.browser.request("GET", "/notes/")[0], 200)

    def open(self) -> str:
        note_id = self.rng.choice(self.couple.received)
        return _outcome(self.browser.request("GET", f"/notes/{note_id}")[0], 200)

    def send(self) -> str:
        if self.token is None:
            self.token = csrf_token(self.browser.request("GET", "/notes/new")[1])
        cookies = dict(self.browser.cookies)  # the redirect target would spend the flash
        form = {"body": TEXT, "csrf_token": self.token}
        status = self.browser.request("POST", "/notes/new", form)[0]
        self.browser.cookies = cookies
        return _outcome(status, 302)

    def sign_in(self) -> str:
        """Sign in as a new visit: the sign-in page, then its form.

        A "busy" answer shows the form again (email kept); the next try sends that form, as a
        person pressing the button again does, instead of loading the page anew.
        """
        if self.busy_form is None:
            browser = Browser(self.browser.port)
            status, page, _ = browser.request("GET", "/login")
            if status != 200 or csrf_token(page) is None:
                browser.close()
                return _outcome(status, 200) if status != 200 else ERROR
            self.busy_form = (browser, csrf_token(page))
        browser, token = self.busy_form
        form = {"email": self.couple.first, "password": PASSWORD, "csrf_token": token}
        status, page, _ = browser.request("POST", "/login", form)
        if status == 503 and csrf_token(page):
            self.busy_form = (browser, csrf_token(page))
            return BUSY
        self.busy_form = None
        browser.close()
        return _outcome(status, 302)

    def mixed(self) -> str:
        pick = self.rng.choices([name for name, _ in MIX], weights=[w for _, w in MIX])[0]
        return getattr(self, pick)()

    def pages_only(self) -> str:
        """The mixed workload with its sign-ins left out: what they cost, by difference."""
        pages = [(name, weight) for name, weight in MIX if name != "sign_in"]
        pick = self.rng.choices([name for name, _ in pages], weights=[w for _, w in pages])[0]
        return getattr(self, pick)()

    def hello(self) -> str:
        return _outcome(self.browser.request("GET", "/bench/hello")[0], 200)

    def baseline(self) -> str:
        return _outcome(self.browser.request("GET", "/bench/baseline")[0], 200)


def clients_for(port: int, couples: list[Couple], count: int, seed_value: int) -> list[Client]:
    browsers = signed_in(port, couples, count)
    return [
        Client(browser, couples[i % len(couples)], random.Random(seed_value + i))  # noqa: S311
        for i, browser in enumerate(browsers)
    ]


# --- bench load ----------------------------------------------------------------------------

SCENARIOS = {
    "hello": ("Flask hello", Client.hello),
    "baseline": ("template + one read", Client.baseline),
    "mixed": ("mixed 70/20/8/2", Client.mixed),
    "pages_only": ("mixed without its sign-ins", Client.pages_only),
}


@click.command("load")
@click.option(
    "--concurrency",
    "levels",
    multiple=True,
    type=click.IntRange(1, 512),
    default=(8, 32, 128),
    show_default=True,
    help="Clients at once (repeat for several levels).",
)
@click.option("--seconds", default=2.0, show_default=True, type=click.FloatRange(0.1, 60))
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--couples", default=8, show_default=True, type=click.IntRange(1, 200))
@click.option("--filler-couples", default=200, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--notes", "notes_each", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--database-url", default=None, help="Benchmark on this database (tables reset).")
def load_command(
    levels: tuple[int, ...],
    seconds: float,
    rounds: int,
    couples: int,
    filler_couples: int,
    notes_each: int,
    workers: int,
    threads: int,
    database_url: str | None,
) -> None:
    """Mixed workload at several concurrencies, next to a hello and a one-read page."""
    with tempfile.TemporaryDirectory(prefix="wishnotes-bench-load-") as folder:
        app = bench_app(database_url, Path(folder))
        real = seed(app, couples=couples, filler_couples=filler_couples, notes_each=notes_each)
        with served(app, workers=workers, threads=threads) as (port, described):
            results: dict[int, dict[str, Figures]] = {}
            for level in levels:
                clients = clients_for(port, real, level, seed_value=level)
                for client in clients:  # warm every worker's caches and connections
                    client.inbox()
                found: dict[str, list[Round]] = {name: [] for name in SCENARIOS}
                for _ in range(rounds):
                    for name, (_, operation) in SCENARIOS.items():
                        round_ = run_round(
                            lambda i, op=operation, cs=clients: op(cs[i]),
                            clients=level,
                            seconds=seconds,
                        )
                        found[name].append(round_)
                results[level] = {name: Figures(rounds) for name, rounds in found.items()}
                for client in clients:
                    client.browser.close()
        with app.app_context():
            db.engine.dispose()
    _report_load(
        results,
        described=described,
        database=app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0],
        rounds=rounds,
        seconds=seconds,
        size=(couples + filler_couples, notes_each),
    )


def _report_load(results, *, described, database, rounds, seconds, size) -> None:
    pairs, notes_each = size
    click.echo(
        f"load benchmark: {described}, {database}, {pairs} couples x {notes_each} notes, "
        f"{os.cpu_count()} CPUs, median of {rounds} interleaved rounds of {seconds:g} s"
    )
    for level, figures in results.items():
        click.echo(f"\nconcurrency {level}:")
        print_table([figures[name].row(label) for name, (label, _) in SCENARIOS.items()])
        ratio = figures["mixed"].per_second / max(figures["baseline"].per_second, 1e-9)
        verdict = "ok" if ratio >= GOAL_MIXED else "BELOW GOAL"
        goal = f" (goal >= {GOAL_MIXED} at 32)" if level == 32 else ""
        print_table([(f"mixed / template + one read{goal}", f"{ratio:8.2f}  {verdict}")])


# --- bench storm ---------------------------------------------------------------------------


def raw_argon2_rate(app: Flask, *, threads: int, seconds: float, niced: bool = False) -> float:
    """Argon2id runs per second with `threads` threads, measured in this process.

    `niced`: at the lower CPU priority the app's KDF threads have, which is what they get on a
    machine whose cores other programs keep busy too.
    """
    runner = app.extensions["wishnotes.kdf"]
    salt = crypto.new_salt()
    lowered: set[int] = set()

    def derive(_client: int) -> str:
        if niced and threading.get_native_id() not in lowered:
            kdf.lower_priority()
            lowered.add(threading.get_native_id())
        crypto.derive_login_keys(PASSWORD, salt=salt, params=runner.params, pepper=runner.pepper)
        return OK

    return run_round(derive, clients=threads, seconds=seconds).per_second


@click.command("storm")
@click.option("--sign-ins", "storm_clients", default=50, show_default=True, type=click.IntRange(1))
@click.option("--pages", "page_clients", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--page-rate",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Inbox requests per second of all page clients together (0: as fast as they can).",
)
@click.option("--seconds", default=4.0, show_default=True, type=click.FloatRange(0.1, 120))
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--couples", default=8, show_default=True, type=click.IntRange(1, 200))
@click.option("--filler-couples", default=200, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--database-url", default=None, help="Benchmark on this database (tables reset).")
def storm_command(
    storm_clients: int,
    page_clients: int,
    page_rate: float,
    seconds: float,
    rounds: int,
    couples: int,
    filler_couples: int,
    workers: int,
    threads: int,
    database_url: str | None,
) -> None:
    """Ordinary pages during a sign-in storm, and sign-ins/s against raw Argon2id."""
    with tempfile.TemporaryDirectory(prefix="wishnotes-bench-storm-") as folder:
        app = bench_app(database_url, Path(folder))
        config = app.config
        slots = kdf.budget(
            cores=config["KDF_CONCURRENCY"] or kdf.usable_cores(),
            memory_mib=config["KDF_MEMORY_MIB"],
            params=app.extensions["wishnotes.kdf"].params,
        ).slots
        real = seed(app, couples=couples, filler_couples=filler_couples, notes_each=20)
        raw = [raw_argon2_rate(app, threads=slots, seconds=seconds)]
        raw_niced = [raw_argon2_rate(app, threads=slots, seconds=seconds, niced=True)]
        with served(app, workers=workers, threads=threads) as (port, described):
            readers = clients_for(port, real, page_clients, seed_value=1)
            stormers = clients_for(port, real, storm_clients, seed_value=2)
            for reader in readers:
                reader.inbox()
            pace = page_clients / page_rate if page_rate else 0.0
            idle, pages, sign_ins = [], [], []
            spent: cpu.Split | None = None  # where the cores went during the storms
            for _ in range(rounds):
                idle.append(
                    run_round(
                        lambda i: readers[i].inbox(),
                        clients=page_clients,
                        seconds=seconds,
                        pace=pace,
                    )
                )
                before = cpu.snapshot()
                pages_round, sign_in_round = _storm_round(
                    readers, stormers, seconds, retry_after=config["KDF_RETRY_AFTER"], pace=pace
                )
                spent = cpu.add(spent, cpu.split(before, cpu.snapshot()))
                pages.append(pages_round)
                sign_ins.append(sign_in_round)
        raw.append(raw_argon2_rate(app, threads=slots, seconds=seconds))
        raw_niced.append(raw_argon2_rate(app, threads=slots, seconds=seconds, niced=True))
        with app.app_context():
            db.engine.dispose()
    _report_storm(
        Figures(idle),
        Figures(pages),
        Figures(sign_ins),
        raw=max(raw),
        raw_niced=max(raw_niced),
        spent=spent,
        slots=slots,
        described=described,
        storm_clients=storm_clients,
        page_rate=page_rate,
        rounds=rounds,
        seconds=seconds,
    )


def _storm_round(
    readers: list[Client], stormer: list[Client], seconds: float, retry_after: float, pace: float
):
    """Readers load the inbox while every stormer signs in again and again, for `seconds`."""
    results: dict[str, Round] = {}
    deadline = time.perf_counter() + seconds

    def storm() -> None:
        def sign_in(i: int) -> str:
            outcome = stormer[i].sign_in()
            if outcome == BUSY:  # told "busy, try again in a moment": waits as Retry-After says
                time.sleep(max(0.0, min(retry_after, deadline - time.perf_counter())))
            return outcome

        results["sign_ins"] = run_round(sign_in, clients=len(stormer), seconds=seconds)

    thread = threading.Thread(target=storm, daemon=True)
    thread.start()
    time.sleep(min(0.5, seconds / 4))  # let the storm build up before measuring pages
    results["pages"] = run_round(
        lambda i: readers[i].inbox(), clients=len(readers), seconds=seconds, pace=pace
    )
    thread.join(timeout=seconds + 120)
    return results["pages"], results["sign_ins"]


def _report_storm(
    idle,
    pages,
    sign_ins,
    *,
    raw,
    raw_niced,
    spent,
    slots,
    described,
    storm_clients,
    page_rate,
    rounds,
    seconds,
):
    click.echo(
        f"sign-in storm: {described}, {storm_clients} clients signing in, inbox at "
        f"{page_rate:g}/s"
        + (" (as fast as possible)" if not page_rate else "")
        + f", KDF budget {slots} slots, {os.cpu_count()} CPUs, {rounds} interleaved rounds "
        f"of {seconds:g} s"
    )
    page_ratio = pages.percentile(0.95) / max(idle.percentile(0.95), 1e-9)
    rate_ratio = sign_ins.per_second / max(raw, 1e-9)
    print_table(
        [
            idle.row("inbox, nobody signing in"),
            pages.row("inbox, during the storm"),
            sign_ins.row("sign-ins during the storm"),
            ("raw Argon2id, budget's threads", f"{raw:8.2f} /s (best of before and after)"),
            ("raw Argon2id at the KDF's priority", f"{raw_niced:8.2f} /s (the same, niced)"),
            (
                f"inbox p95 storm / idle (goal < {GOAL_STORM_PAGES})",
                f"{page_ratio:8.2f}  {'ok' if page_ratio < GOAL_STORM_PAGES else 'ABOVE GOAL'}",
            ),
            (
                f"sign-ins / raw Argon2id (goal >= {GOAL_STORM_SIGN_INS})",
                f"{rate_ratio:8.2f}  "
                + ("ok" if rate_ratio >= GOAL_STORM_SIGN_INS else "BELOW GOAL"),
            ),
            (
                "sign-ins / raw Argon2id at its priority",
                f"{sign_ins.per_second / max(raw_niced, 1e-9):8.2f}",
            ),
        ]
    )
    if spent is not None:
        # One run's CPU as runs side by side take it: the budget's threads, each on a core.
        _report_cores(spent, signed_in=sum(len(r.latencies) for r in sign_ins.rounds),
                      run_cpu=slots / max(raw, 1e-9), raw=raw)  # fmt: skip
    if not has_gunicorn():
        click.echo("(gunicorn is not installed: served by waitress in one process)")


def _report_cores(spent: cpu.Split, *, signed_in: int, run_cpu: float, raw: float) -> None:
    """Where the cores went during the storms, and the sign-in rate the rest leaves room for.

    Argon2id's share is the sign-ins done times the CPU of one run; what else the machine
    did (pages, the sign-ins' other work, busy answers, this client, the database) is CPU
    the KDF could not have had.
    """
    argon2 = min(spent.server, signed_in * run_cpu)
    window, cores = spent.seconds, spent.cores / max(spent.seconds, 1e-9)
    shares = (
        ("Argon2id", argon2),
        ("rest of the server", spent.server - argon2),
        ("this client", spent.client),
        ("rest of the machine", spent.other),
        ("idle", spent.idle),
    )
    print_table(
        [
            (
                f"cores during the storm (of {cores:.1f})",
                "  ".join(f"{label} {seconds / window:.2f}" for label, seconds in shares),
            )
        ]
    )
    left = max(0.0, spent.cores - (spent.machine - argon2)) / max(window, 1e-9)
    allowed = left / max(run_cpu, 1e-9)
    print_table(
        [
            (
                "sign-ins/s the cores left allow",
                f"{allowed:8.2f} /s  ({allowed / max(raw, 1e-9):.2f} of raw; "
                f"one Argon2id run is {run_cpu * 1000:.0f} ms of CPU)",
            )
        ]
    )
