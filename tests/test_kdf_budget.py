"""The machine-wide Argon2id budget: slots shared by processes, bounded waits, calm 503s."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from wishnotes import crypto, kdf
from wishnotes.errors import KdfBusy

from .conftest import CSRF_RE, PASSWORD, make_app, reset_database

SIXTY_FOUR_MIB = crypto.KdfParams(memory_kib=65536, iterations=3)


@pytest.mark.parametrize(
    ("cores", "memory_mib", "slots"),
    [
        (16, 4096, 16),  # cores limit: 16 runs of 64 MiB fit in 4 GiB
        (16, 512, 8),  # memory limits: 512 MiB holds 8 runs of 64 MiB
        (2, 1024, 2),
        (4, 100, 1),  # 100 MiB holds one run
        (4, 10, 1),  # never below one slot: sign-ins must stay possible
    ],
)
def test_budget_is_the_smaller_of_cores_and_memory_over_one_run(cores, memory_mib, slots):
    found = kdf.budget(cores=cores, memory_mib=memory_mib, params=SIXTY_FOUR_MIB)
    assert found.slots == slots
    assert found.run_mib == 64


def test_budget_rounds_a_run_up_to_whole_mebibytes():
    params = crypto.KdfParams(memory_kib=19456 + 1, iterations=2)
    assert kdf.budget(cores=64, memory_mib=200, params=params).slots == 200 // 20


def test_app_takes_its_slots_from_the_memory_budget_and_cores(tmp_path, postgres_engine):
    app = make_app(tmp_path, postgres_engine, KDF_CONCURRENCY=8, KDF_MEMORY_MIB=60)
    runner = app.extensions["wishnotes.kdf"]
    assert runner.max_concurrent == 60 // 19  # the test floor is 19 MiB a run
    assert runner.slots_dir == tmp_path / "instance" / "kdf-slots"


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from wishnotes.kdf import SlotFiles

    slots = SlotFiles(Path(sys.argv[1]), int(sys.argv[2]))
    log = open(sys.argv[3], "a", buffering=1)
    for _ in range(int(sys.argv[4])):
        fd = slots.acquire(deadline=time.monotonic() + 30)
        assert fd is not None
        log.write(f"start {time.monotonic()}\\n")
        time.sleep(float(sys.argv[5]))
        log.write(f"end {time.monotonic()}\\n")
        slots.release(fd)
    if len(sys.argv) > 6:  # take a slot and keep it until killed
        fd = slots.acquire(deadline=time.monotonic() + 30)
        print("holding", flush=True)
        time.sleep(60)
    """
)


def _holder(folder, count, log, runs, hold, *extra):
    command = [sys.executable, "-c", _HOLDER, str(folder), str(count), str(log), str(runs)]
    return subprocess.Popen(
        [*command, str(hold), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _peak(log_paths) -> int:
    events = []
    for path in log_paths:
        for line in path.read_text().splitlines():
            kind, moment = line.split()
            events.append((float(moment), 0 if kind == "end" else 1))
    active = peak = 0
    for _, starting in sorted(events):
        active += 1 if starting else -1
        peak = max(peak, active)
    return peak


def test_slot_limit_holds_across_two_processes(tmp_path):
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [_holder(tmp_path / "slots", 1, log, 4, 0.05) for log in logs]
    for process in processes:
        assert process.wait(timeout=60) == 0, process.stderr.read()
    assert _peak(logs) == 1  # one slot: never two runs at once, whichever process
    assert all(len(log.read_text().splitlines()) == 8 for log in logs)


def test_two_slots_admit_a_second_process_but_not_a_third_run(tmp_path):
    folder = tmp_path / "slots"
    holder = _holder(folder, 2, tmp_path / "a.log", 0, 0, "keep")
    try:
        assert holder.stdout.readline().strip() == "holding"  # another process has one slot
        slots = kdf.SlotFiles(folder, 2)
        second = slots.acquire(deadline=time.monotonic() + 1)
        assert second is not None  # the other slot is free
        assert slots.acquire(deadline=time.monotonic() + 0.2) is None  # and then none is
        slots.release(second)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)


def test_a_slot_is_freed_when_its_process_dies(tmp_path):
    folder = tmp_path / "slots"
    holder = _holder(folder, 1, tmp_path / "a.log", 0, 0, "keep")
    try:
        # It took the one slot and keeps it: nobody else gets it.
        assert holder.stdout.readline().strip() == "holding"
        slots = kdf.SlotFiles(folder, 1)
        fd = slots.acquire(deadline=time.monotonic() + 0.2)
        assert fd is None
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    fd = slots.acquire(deadline=time.monotonic() + 5)
    assert fd is not None
    slots.release(fd)


def test_a_wait_past_the_bound_raises_busy(tmp_path):
    runner = kdf.KdfRunner(
        pepper=b"p" * 32,
        params=crypto.KDF_FLOOR,
        max_concurrent=1,
        slots_dir=tmp_path / "slots",
        wait=0.2,
        retry_after=7,
    )
    slots = kdf.SlotFiles(tmp_path / "slots", 1)
    fd = slots.acquire(deadline=time.monotonic())
    try:
        started = time.monotonic()
        with pytest.raises(KdfBusy) as info:
            runner.burn("some password")
        assert 0.15 < time.monotonic() - started < 5
        assert info.value.retry_after == 7
    finally:
        slots.release(fd)
    runner.burn("some password")  # the slot is free again: it runs


def _login_form(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return next(group for group in CSRF_RE.search(page).groups() if group)


def test_sign_in_that_waits_too_long_gets_a_calm_503_with_retry_after(tmp_path, postgres_engine):
    app = make_app(tmp_path, postgres_engine, KDF_CONCURRENCY=1, KDF_WAIT=0.2)
    reset_database(app)
    client = app.test_client()
    token = _login_form(client)
    slots = kdf.SlotFiles(tmp_path / "instance" / "kdf-slots", 1)
    fd = slots.acquire(deadline=time.monotonic())  # another worker is deriving
    try:
        response = client.post(
            "/login", data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
        )
    finally:
        slots.release(fd)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    page = response.get_data(as_text=True)
    assert "Many people are signing in right now. Please try again in a moment." in page
    assert "Traceback" not in page and PASSWORD not in page
    # The form is there again, email kept: trying again is one press, with no page to reload.
    assert re.search(r'name="email"[^>]*value="ada@example.com"', page)
    assert 'name="password"' in page and 'value="' + PASSWORD not in page
    again = next(group for group in CSRF_RE.search(page).groups() if group)
    assert (
        client.post(
            "/login", data={"email": "ada@example.com", "password": "wrong", "csrf_token": again}
        ).status_code
        == 422
    )  # the token on the busy page is a good one


def test_sign_ins_beyond_the_process_queue_are_told_busy_at_once(tmp_path):
    runner = kdf.KdfRunner(
        pepper=b"p" * 32,
        params=crypto.KDF_FLOOR,
        max_concurrent=1,
        slots_dir=tmp_path / "slots",
        queue=1,
        wait=5,
    )
    slots = kdf.SlotFiles(tmp_path / "slots", 1)
    fd = slots.acquire(deadline=time.monotonic())
    waiting = threading.Thread(target=runner.burn, args=("first",))
    waiting.start()
    try:
        time.sleep(0.1)  # the first sign-in now waits for the slot, holding the queue
        started = time.monotonic()
        with pytest.raises(KdfBusy):
            runner.burn("second")
        assert time.monotonic() - started < 0.1  # answered without waiting
    finally:
        slots.release(fd)
        waiting.join(timeout=10)


def test_prepared_statements_can_be_turned_off_for_pgbouncer(tmp_path, postgres_engine):
    if postgres_engine is None:
        pytest.skip("needs PostgreSQL")
    from wishnotes.extensions import db

    app = make_app(tmp_path, postgres_engine, DATABASE_PREPARED_STATEMENTS=False)
    with app.app_context(), db.engine.connect() as connection:
        assert connection.connection.driver_connection.prepare_threshold is None
        db.engine.dispose()
    default = make_app(tmp_path, postgres_engine)
    with default.app_context(), db.engine.connect() as connection:
        assert connection.connection.driver_connection.prepare_threshold == 5
        db.engine.dispose()
