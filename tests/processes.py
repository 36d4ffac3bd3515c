"""Processes started by tests: always stopped, whatever the test did and whatever signals do.

`running(...)` starts a command and, on every way out of the `with` block, asks it to stop
(SIGINT, as Ctrl-C would), then insists (SIGTERM), then kills it (SIGKILL), each after a short
wait. SIGINT alone is not enough: a shell starts background jobs with SIGINT ignored, and a
child inherits that, so `pytest &` would leave a `wishnotes serve` behind.

`children_of(pid)` lists the live child processes of a process (from /proc); the suite checks
at its end that it left none (see conftest.pytest_sessionfinish).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

# Seconds granted after each signal before the next, harder one.
GRACE = (10.0, 5.0, 5.0)


def stop(process: subprocess.Popen, grace: Sequence[float] = GRACE) -> str:
    """Stop `process` with SIGINT, then SIGTERM, then SIGKILL; return its output, if piped."""
    output = ""
    for sig, wait in zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), grace, strict=True):
        if process.poll() is not None:
            break
        process.send_signal(sig)
        try:
            out, _ = process.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        output += out or ""
        break
    if process.poll() is None:  # SIGKILL cannot be refused; this only reaps it
        process.wait(timeout=30)
    if process.stdout and not process.stdout.closed:
        output += process.stdout.read() or ""
        process.stdout.close()
    return output


@contextmanager
def running(
    args: Sequence[str], *, grace: Sequence[float] = GRACE, **popen
) -> Iterator[subprocess.Popen]:
    """Start `args` (stdout and stderr piped together as text) and stop it on leaving."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.STDOUT)
    popen.setdefault("text", True)
    process = subprocess.Popen(list(args), **popen)
    process.output = ""
    try:
        yield process
    finally:
        process.output = stop(process, grace)


def children_of(pid: int) -> list[tuple[int, str]]:
    """Return (pid, command line) of every live, non-zombie child of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        # Fields after the command name, which may itself hold spaces and parentheses.
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def my_children() -> list[tuple[int, str]]:
    """Return the live child processes of this process."""
    return children_of(os.getpid())
