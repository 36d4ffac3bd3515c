"""`wishnotes bench relay`: a relay that refuses whole sessions for a while, then is fixed.

The drill (`outage_drill`) queues one weekly email for each of N users, lets the relay refuse
every session for a set time while a pass runs each minute (on the explicit clock, no real
waiting), then lets it take mail, and counts what arrived: delivered, given up, duplicates.
tests/test_relay_faults.py runs the same drill against the test suite's SMTP server.
"""

from __future__ import annotations

import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import func, select

from wishnotes import tasks
from wishnotes.bench import bench_app, print_table
from wishnotes.bench.emails import SUNDAY_1800, insert_users
from wishnotes.extensions import db
from wishnotes.models import OutboxEmail

REFUSAL = "554 5.3.2 Service refused for now"


@dataclass
class Drill:
    emails: int
    outage: timedelta
    passes: int  # minute passes until everything was delivered (or the bound was reached)
    sessions_tried: int  # passes that opened a connection while the relay refused
    delivered: int
    given_up: int
    duplicates: int
    missing: int
    last_sent_at: timedelta | None  # after the start of the outage


def outage_drill(
    app: Flask,
    *,
    emails: int,
    outage: timedelta,
    refuse: Callable[[bool], None],
    received: Callable[[], list[str]],
    max_passes: int = 180,
) -> Drill:
    """Run the drill on `app` (fresh tables) against a relay `refuse(True/False)` controls.

    `received()` returns the Message-IDs the relay has taken so far.
    """
    insert_users(app, emails, settings=lambda i: {"timezone": "UTC"})  # weekly, Sunday 18:00
    start, now = SUNDAY_1800, SUNDAY_1800
    refuse(True)
    passes = sessions_tried = 0
    last_sent_at = None
    with app.app_context():
        while passes < max_passes:
            if now >= start + outage:
                refuse(False)
            result = tasks.run_due(now=now)
            passes += 1
            sessions_tried += result.relay_refused is not None
            if result.sent:
                last_sent_at = now - start
            counts = dict(
                db.session.execute(
                    select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
                ).all()
            )
            db.session.commit()
            if counts.get("sent", 0) + counts.get("failed", 0) >= emails:
                break
            now += timedelta(minutes=1)
    ids = received()
    return Drill(
        emails=emails,
        outage=outage,
        passes=passes,
        sessions_tried=sessions_tried,
        delivered=counts.get("sent", 0),
        given_up=counts.get("failed", 0),
        duplicates=len(ids) - len(set(ids)),
        missing=emails - len(set(ids)),
        last_sent_at=last_sent_at,
    )


@contextmanager
def refusing_relay() -> Iterator[tuple[int, Callable[[bool], None], Callable[[], list[str]]]]:
    """Run an aiosmtpd relay on 127.0.0.1 that refuses at the greeting while told to."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    state = {"refusing": False}
    ids: list[str] = []
    lock = threading.Lock()

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            for line in envelope.content.split(b"\r\n"):
                if line.lower().startswith(b"message-id:"):
                    with lock:
                        ids.append(line.split(b":", 1)[1].strip().decode())
                    break
            return "250 OK"

    class Relay(SMTP):
        async def push(self, status):
            if not getattr(self, "_greeted", False):
                self._greeted = True
                if state["refusing"]:
                    status = REFUSAL
            await super().push(status)

    class Controlled(Controller):
        def factory(self):
            return Relay(self.handler)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controlled(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:

        def refuse(on: bool) -> None:
            state["refusing"] = on

        def received() -> list[str]:
            with lock:
                return list(ids)

        yield port, refuse, received
    finally:
        controller.stop()


@click.command("relay")
@click.option("--emails", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option("--outage-minutes", default=5, show_default=True, type=click.IntRange(0, 600))
@click.option("--database-url", help="Run on this database (its tables are reset).")
def bench_relay(emails: int, outage_minutes: int, database_url: str | None) -> None:
    """A relay refusing every session for a while, then fixed: what arrives, and how often."""
    with tempfile.TemporaryDirectory() as tmp, refusing_relay() as (port, refuse, received):
        app = bench_app(
            database_url,
            Path(tmp) / "instance",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=port,
        )
        drill = outage_drill(
            app,
            emails=emails,
            outage=timedelta(minutes=outage_minutes),
            refuse=refuse,
            received=received,
        )
        with app.app_context():
            db.engine.dispose()
    print_table(
        [
            ("emails due", f"{drill.emails}"),
            ("relay refusing every session", f"{outage_minutes} min ({REFUSAL[:3]} greeting)"),
            ("minute passes", f"{drill.passes}"),
            ("sessions tried while refused", f"{drill.sessions_tried} (backing off)"),
            ("delivered", f"{drill.delivered}"),
            ("given up", f"{drill.given_up}"),
            ("duplicates", f"{drill.duplicates}"),
            ("missing", f"{drill.missing}"),
            ("all delivered by", _minutes(drill.last_sent_at)),
        ]
    )


def _minutes(span: timedelta | None) -> str:
    if span is None:
        return "never"
    return f"{span.total_seconds() / 60:g} min after the outage began"
