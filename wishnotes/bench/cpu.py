"""Where a machine's cores went during a benchmark: the server, this client, everything else.

Read from Linux's /proc: the machine's busy and idle time (/proc/stat), this process's own CPU
time, and the CPU time of the server it started (every process below this one, alive or
already waited for). Elsewhere `snapshot()` returns None and the benches leave the line out.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_MAX_DEPTH = 64  # how far up the process tree a server's processes are looked for


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds spent so far, by whom; `at` is time.monotonic()."""

    at: float
    machine_busy: float
    machine_all: float
    client: float
    server: float


@dataclass(frozen=True)
class Split:
    """CPU seconds spent between two snapshots, by whom, over `seconds` of wall time."""

    seconds: float
    cores: float  # the cores the machine's counters covered in that time (busy + idle)
    machine: float
    client: float
    server: float

    @property
    def other(self) -> float:
        """The rest of the machine: the database, other programs, the kernel's own work."""
        return max(0.0, self.machine - self.client - self.server)

    @property
    def idle(self) -> float:
        return max(0.0, self.cores - self.machine)


def snapshot() -> Snapshot | None:
    """Read the counters now, or None where /proc is not there to read."""
    try:
        busy, everything = _machine()
        server = _descendants_cpu(os.getpid())
    except OSError:
        return None
    own = os.times()
    return Snapshot(
        at=time.monotonic(),
        machine_busy=busy,
        machine_all=everything,
        client=own.user + own.system,
        # Children this process already waited for (and theirs) count too.
        server=server + own.children_user + own.children_system,
    )


def split(before: Snapshot | None, after: Snapshot | None) -> Split | None:
    """The CPU seconds spent between two snapshots, by whom."""
    if before is None or after is None:
        return None
    return Split(
        seconds=after.at - before.at,
        cores=after.machine_all - before.machine_all,
        machine=after.machine_busy - before.machine_busy,
        client=after.client - before.client,
        server=after.server - before.server,
    )


def add(first: Split | None, second: Split | None) -> Split | None:
    """Two windows as one (rounds of a bench)."""
    if first is None or second is None:
        return first or second
    return Split(
        seconds=first.seconds + second.seconds,
        cores=first.cores + second.cores,
        machine=first.machine + second.machine,
        client=first.client + second.client,
        server=first.server + second.server,
    )


def _machine() -> tuple[float, float]:
    """(busy, busy + idle) CPU seconds of all cores since boot."""
    fields = [int(value) for value in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user already)
    idle = fields[3] + fields[4]
    everything = sum(fields[:8])
    return (everything - idle) / _TICKS, everything / _TICKS


def _descendants_cpu(root: int) -> float:
    """CPU seconds of every live process below `root`, with the children each waited for."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended while we looked
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
        spent[int(entry.name)] = sum(int(value) for value in fields[11:15]) / _TICKS
    total = 0.0
    for pid, seconds in spent.items():
        ancestor = parents.get(pid)
        for _ in range(_MAX_DEPTH):  # bounded: ids read at different moments may be reused
            if ancestor in (None, 0, 1, root):
                break
            ancestor = parents.get(ancestor)
        if ancestor == root:
            total += seconds
    return total
