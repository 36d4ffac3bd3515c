"""Argon2id runs for logins: the server pepper, the target cost and a machine-wide budget.

Every Argon2id run takes a CPU core and `memory_kib` of memory for a fraction of a second. The
budget is one number of *slots* per machine (`budget()`): no more runs at once than cores, and
no more than fit in KDF_MEMORY_MIB, across every worker process of the host. A slot is an
exclusive `flock` on one of N files in a shared folder: the kernel drops the lock when its
holder closes the file or dies, so a crashed worker never keeps a slot.

Sign-ins must not stall the rest of the site: a process lets at most `queue` sign-ins wait or
run at once (the others are answered "busy" at once, holding no server thread), a wait ends
with `KdfBusy` after `wait` seconds, and the runs themselves happen in a small pool of threads
at a lower CPU priority, so ordinary pages come first and Argon2id takes the cores they leave.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from wishnotes import crypto
from wishnotes.errors import KdfBusy

# Unknown accounts still pay one full KDF run, so timing does not tell which emails exist.
_DUMMY_SALT = bytes(16)
# How much less CPU priority a KDF thread has than a page (a nice value, 0..19).
KDF_NICENESS = 10
_POLL_SECONDS = (0.002, 0.006)  # a waiting run looks for a free slot this often (jittered)


def usable_cores() -> int:
    """Return the number of CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Budget:
    """How many Argon2id runs a machine may have at once, and why."""

    slots: int
    cores: int
    memory_mib: int
    run_mib: int


def budget(*, cores: int, memory_mib: int, params: crypto.KdfParams) -> Budget:
    """Return the machine's slots: min(cores, memory budget // memory of one run), at least 1."""
    run_mib = max(1, math.ceil(params.memory_kib / 1024))
    slots = max(1, min(cores, memory_mib // run_mib))
    return Budget(slots=slots, cores=cores, memory_mib=memory_mib, run_mib=run_mib)


class SlotFiles:
    """N slots shared by every process that opens the same folder, as flock-ed files."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder = Path(folder)
        self.count = count
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._paths = [self.folder / f"slot-{index}" for index in range(count)]

    def acquire(self, *, deadline: float) -> int | None:
        """Take a free slot, waiting until `deadline` (time.monotonic); return its descriptor."""
        while True:
            start = random.randrange(self.count)  # noqa: S311 - spreads waiters, not a secret
            for offset in range(self.count):
                fd = os.open(self._paths[(start + offset) % self.count], os.O_RDWR | os.O_CREAT)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return fd
            if time.monotonic() >= deadline:
                return None
            time.sleep(random.uniform(*_POLL_SECONDS))  # noqa: S311

    @staticmethod
    def release(fd: int) -> None:
        os.close(fd)  # closing the descriptor drops its lock


class _LocalSlots:
    """Slots of this process only (no shared folder given): a semaphore."""

    def __init__(self, count: int) -> None:
        self._gate = threading.BoundedSemaphore(count)

    def acquire(self, *, deadline: float) -> int | None:
        return 0 if self._gate.acquire(timeout=max(0.0, deadline - time.monotonic())) else None

    def release(self, fd: int) -> None:
        self._gate.release()


def lower_priority() -> None:
    """Give the calling thread the KDF's lower CPU priority (for good: it cannot be raised)."""
    # Linux applies setpriority to one thread when given its id; elsewhere this is skipped.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), KDF_NICENESS)


@dataclass(repr=False)
class KdfRunner:
    """Derive login keys within the machine's KDF budget; raise KdfBusy when it stays full.

    `max_concurrent` is the number of slots of the machine; with `slots_dir` they are shared by
    every process using that folder, without it they belong to this process. `queue` caps the
    sign-ins of this process waiting or running at once (None: no cap); `wait` bounds a wait.
    """

    pepper: bytes
    params: crypto.KdfParams
    max_concurrent: int = 1
    slots_dir: Path | None = None
    queue: int | None = None
    wait: float = 5.0
    retry_after: int = 3
    _slots: SlotFiles | _LocalSlots = field(init=False)
    _admitted: threading.BoundedSemaphore | None = field(init=False)
    _pool: ThreadPoolExecutor | None = field(init=False, default=None)
    _pool_pid: int = field(init=False, default=0)
    _pool_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not crypto.kdf_params_ok(self.params):
            raise ValueError(f"KDF parameters {self.params} are below the floor {crypto.KDF_FLOOR}")
        if not crypto.kdf_params_bounded(self.params):
            raise ValueError(
                f"KDF parameters {self.params} are above the ceiling {crypto.KDF_CEILING}"
            )
        if self.slots_dir is not None:
            self._slots = SlotFiles(self.slots_dir, self.max_concurrent)
        else:
            self._slots = _LocalSlots(self.max_concurrent)
        self._admitted = threading.BoundedSemaphore(self.queue) if self.queue else None

    def derive(
        self, password: str, *, salt: bytes, params: crypto.KdfParams
    ) -> tuple[bytes, bytes]:
        """Return (auth value, key-encryption key) for a password; KdfBusy if no slot frees."""
        if self._admitted is not None and not self._admitted.acquire(blocking=False):
            raise KdfBusy(retry_after=self.retry_after)
        try:
            deadline = time.monotonic() + self.wait
            future = self._executor().submit(self._run, password, salt, params, deadline)
            return future.result()
        finally:
            if self._admitted is not None:
                self._admitted.release()

    def burn(self, password: str) -> None:
        """Spend one KDF run at the target cost and throw the result away."""
        self.derive(password, salt=_DUMMY_SALT, params=self.params)

    def _run(
        self, password: str, salt: bytes, params: crypto.KdfParams, deadline: float
    ) -> tuple[bytes, bytes]:
        slot = self._slots.acquire(deadline=deadline)
        if slot is None:
            raise KdfBusy(retry_after=self.retry_after)
        try:
            return crypto.derive_login_keys(password, salt=salt, params=params, pepper=self.pepper)
        finally:
            self._slots.release(slot)

    def _executor(self) -> ThreadPoolExecutor:
        # Made on first use and again in a forked worker: threads do not survive a fork.
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                workers = self.queue or max(self.max_concurrent, 8)
                self._pool = ThreadPoolExecutor(
                    max_workers=workers, thread_name_prefix="kdf", initializer=lower_priority
                )
                self._pool_pid = os.getpid()
            return self._pool
