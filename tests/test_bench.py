"""The benchmark commands run end to end and print their figures (quick versions, no timing)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from wishnotes.bench import bench

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
