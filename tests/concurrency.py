"""Real concurrent requests, with the race window held open on purpose.

Requests run in threads through the app's test client (each request has its own app context,
so its own database session and connection). To make a race happen every time rather than
now and then, `hold_before` stops a chosen thread just before a chosen SQL statement until the
test lets it go, and `meet_after` makes threads wait for each other there (a barrier that
gives up after a few seconds, so code that serialises them with locks still finishes).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator

from sqlalchemy import event

TIMEOUT = 60


def run_together(*calls: Callable[[], object]) -> list[object]:
    """Run each call in its own thread, all at once; return their results in order."""
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            results[index] = call()
        except BaseException as exc:  # handed to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a request did not finish"
    if errors:
        raise errors[0]
    return results


class Hold:
    """Stops the first thread that runs a matching statement, just before it, until released."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern, re.S)
        self.reached = threading.Event()
        self.released = threading.Event()
        self._taken = False
        self._lock = threading.Lock()

    def before_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if threading.current_thread() is threading.main_thread():
            return
        if not self.pattern.search(statement):
            return
        with self._lock:
            if self._taken:
                return
            self._taken = True
        self.reached.set()
        self.released.wait(TIMEOUT)

    def wait_until_reached(self) -> None:
        assert self.reached.wait(TIMEOUT), "the held request never got there"

    def release(self) -> None:
        self.released.set()


@contextlib.contextmanager
def hold_before(engine, pattern: str) -> Iterator[Hold]:
    """Hold the first request thread just before a statement matching `pattern`."""
    hold = Hold(pattern)
    event.listen(engine, "before_cursor_execute", hold.before_execute)
    try:
        yield hold
    finally:
        hold.release()
        event.remove(engine, "before_cursor_execute", hold.before_execute)


@contextlib.contextmanager
def meet_after(engine, pattern: str, parties: int, timeout: float = 3.0) -> Iterator[None]:
    """Make request threads wait for each other right after a statement matching `pattern`."""
    barrier = threading.Barrier(parties, timeout=timeout)
    compiled = re.compile(pattern, re.S)
    seen: set[int] = set()

    def after_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        me = threading.get_ident()
        if threading.current_thread() is threading.main_thread() or me in seen:
            return
        if compiled.search(statement):
            seen.add(me)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()

    event.listen(engine, "after_cursor_execute", after_execute)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)
