"""The benchmark commands run end to end and print their figures (quick versions, no timing)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from wishnotes.bench import bench
from wishnotes.models import PepperCheck

from .conftest import POSTGRES_URL

QUICK = [
    "--seconds",
    "0.2",
    "--rounds",
    "1",
    "--couples",
    "1",
    "--filler-couples",
    "2",
    "--workers",
    "1",
]


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    # The server process and the seeding both read these: the KDF at its floor keeps it quick.
    monkeypatch.setenv("WISHNOTES_KDF_MEMORY_KIB", "19456")
    monkeypatch.setenv("WISHNOTES_KDF_ITERATIONS", "2")


def _run(*args: str) -> str:
    result = CliRunner().invoke(bench, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_bench_load_prints_each_scenario_next_to_the_baselines():
    output = _run("load", "--concurrency", "2", "--notes", "3", *QUICK)
    assert "gunicorn" in output or "waitress" in output
    for label in ("Flask hello", "template + one read", "mixed 70/20/8/2"):
        line = next(line for line in output.splitlines() if label in line)
        assert "/s" in line and "p95" in line and "p99" in line and "errors 0" in line
    assert "mixed / template + one read" in output


def test_bench_storm_prints_pages_and_sign_ins_against_raw_argon2id():
    output = _run("storm", "--sign-ins", "3", "--pages", "1", *QUICK)
    for label in ("nobody signing in", "during the storm", "sign-ins during", "raw Argon2id"):
        assert label in output
    assert "storm / idle" in output and "sign-ins / raw Argon2id" in output
    # Where the cores went during the storm, and the sign-in rate the rest leaves room for.
    split = next(line for line in output.splitlines() if "cores during the storm" in line)
    for part in ("Argon2id", "rest of the server", "this client", "rest of the machine", "idle"):
        assert part in split
    assert "sign-ins/s the cores left allow" in output


def test_cpu_split_of_a_busy_child_counts_it_as_the_server():
    import subprocess
    import sys

    from wishnotes.bench import cpu

    before = cpu.snapshot()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.process_time()\n"
                              "while time.process_time() - t < 0.5: pass"])  # fmt: skip
    child.wait(timeout=30)
    split = cpu.split(before, cpu.snapshot())
    if split is None:
        pytest.skip("CPU accounting reads /proc (Linux)")
    # The child has exited and been waited for: its time counts as this process's server.
    assert split.server >= 0.4  # it spent half a second of one core
    assert split.machine >= 0.4 and split.cores >= split.machine
    assert split.client < split.server


def test_bench_notes_measures_first_opens_and_the_baseline():
    output = _run("notes", "--seconds", "0.2", "--rounds", "1", "--notes", "5", "--threads", "1")
    for label in ("baseline page", "open a note again", "first time", "send a note"):
        assert label in output


def test_the_baseline_pages_exist_only_in_the_bench_server(tmp_path, postgres_engine):
    from .conftest import make_app

    app = make_app(tmp_path, postgres_engine)
    client = app.test_client()
    assert client.get("/bench/hello").status_code == 404
    assert client.get("/bench/baseline").status_code == 404
    from wishnotes.bench.server import create_bench_app

    with pytest.raises(RuntimeError, match="only in a server started by wishnotes bench"):
        create_bench_app()


def test_bench_load_falls_back_to_waitress_without_gunicorn(monkeypatch):
    from wishnotes.bench import server

    monkeypatch.setattr(server, "has_gunicorn", lambda: False)
    output = _run("load", "--concurrency", "1", "--notes", "2", *QUICK)
    assert "waitress" in output and "gunicorn is not installed" in output
    assert "errors 0" in next(line for line in output.splitlines() if "mixed 70/20/8/2" in line)


def test_bench_crypto_prints_open_and_send_against_the_floor():
    output = _run("crypto", "--rounds", "5", "--repeat", "1")
    for label in ("open, app", "open, floor", "send, app", "send, floor"):
        assert label in output
    for kind in ("open", "send"):
        line = next(line for line in output.splitlines() if f"{kind}: app / floor" in line)
        assert "median" in line and "best" in line


def _value(output: str, label: str) -> str:
    return next(line for line in output.splitlines() if label in line).split(label, 1)[1].strip()


def test_bench_login_prints_http_logins_against_raw_argon2id():
    output = _run("login", "--requests", "2", "--seconds", "5", "--threads", "1")
    for label in ("raw Argon2id", "HTTP login (GET form + POST)", "ratio (goal >= 0.90)"):
        assert label in output


@pytest.fixture
def no_mail_folder(monkeypatch):
    # The development default writes emails to the instance folder; these benches name an SMTP
    # server, so every email must go there.
    from wishnotes import mail

    def refuse(self, message):
        raise AssertionError("an email was written to the mail folder, not sent over SMTP")

    monkeypatch.setattr(mail.FolderTransport, "send", refuse)


def test_bench_emails_sends_through_the_sink_and_times_the_scheduler(no_mail_folder):
    output = _run("emails", "--users", "4", "--scan-users", "4")
    assert "aiosmtpd sink" in output
    for label in ("wishnotes, end to end", "raw smtplib", "pass with every user due"):
        assert label in output


def test_bench_relay_delivers_every_email_once_after_the_outage(no_mail_folder):
    output = _run("relay", "--emails", "4", "--outage-minutes", "2")
    assert _value(output, "delivered") == "4"
    for label in ("given up", "duplicates", "missing"):
        assert _value(output, label) == "0"
    assert int(_value(output, "sessions tried while refused").split()[0]) >= 1


@pytest.mark.skipif(not POSTGRES_URL, reason="bench history fills a PostgreSQL database")
def test_bench_history_compares_a_long_inbox_with_a_short_one(postgres_engine):
    try:
        output = _run(
            "history",
            "--database-url",
            POSTGRES_URL,
            *("--users", "10", "--notes", "100", "--long-pair", "10", "--rounds", "5"),
        )
    finally:
        # The bench starts its app with a pepper of its own: the next test's must not meet it.
        PepperCheck.__table__.drop(postgres_engine, checkfirst=True)
    for label in ("long/short, inbox query", "long/short, inbox page", "EXPLAIN (ANALYZE"):
        assert label in output
