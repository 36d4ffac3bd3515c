"""Background jobs on huey: deliver the outbox, and every minute queue the emails now due.

Every hour `housekeeping_pass` deletes what has ended (see wishnotes.housekeeping).

The outbox table, not the huey queue, is the record of what must be sent: a lost or doubled
job message costs at most a delay, never an email. `deliver_emails` is woken right after a
commit that queued an email (see `kick_after_commit`) and by the periodic `schedule_emails`,
which also sweeps up retries whose time has come.

Consumers: `wishnotes worker` (any number, on any host with Redis); on the embedded default
`wishnotes serve` runs one in its own process (`start_embedded_consumer`). For cron-style
deployments `wishnotes emails run-due` does one pass synchronously (`run_due`), and
`wishnotes housekeeping` one housekeeping pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, current_app
from huey import crontab
from huey.consumer import Consumer
from sqlalchemy import event
from sqlalchemy.orm import Session

from wishnotes import clock, database, housekeeping, mail, outbox, schedule
from wishnotes.extensions import huey

log = logging.getLogger(__name__)
# Bounds one synchronous run: batches of EMAIL_BATCH_SIZE, so 100 x 100 rows by default.
MAX_BATCHES_PER_RUN = 1000


@huey.app_task()
def deliver_emails() -> int:
    """Deliver one batch of due emails; hand on to a new task while more are due."""
    report = outbox.deliver_due(
        now=clock.now(), transport=mail.transport(), limit=current_app.config["EMAIL_BATCH_SIZE"]
    )
    if report.more:
        deliver_emails()  # a new task, so a consumer can stop between batches
    return report.sent


@huey.app_periodic_task(crontab(minute="*"))
def schedule_emails() -> int:
    """Queue the weekly and daily emails now due, then wake delivery (also for retries)."""
    queued = schedule.queue_due(now=clock.now()).queued
    deliver_emails()
    return queued


@huey.app_periodic_task(crontab(minute="23"))
def housekeeping_pass() -> housekeeping.Report:
    """Delete expired sessions, logins, invites and reset links; empty old email bodies."""
    report = housekeeping.run(now=clock.now(), config=current_app.config)
    log.info("Housekeeping: %s", report.summary())
    return report


@dataclass
class RunReport:
    queued: int
    sent: int
    retried: int
    failed: int
    skipped: int


def run_due(*, now: datetime, transport: mail.Transport | None = None) -> RunReport:
    """Run one scheduler pass and deliver everything due, synchronously (cron, tests)."""
    queued = schedule.queue_due(now=now).queued
    transport = transport or mail.transport()
    totals = outbox.Report()
    for _ in range(MAX_BATCHES_PER_RUN):
        report = outbox.deliver_due(
            now=now, transport=transport, limit=current_app.config["EMAIL_BATCH_SIZE"]
        )
        for name in ("sent", "retried", "failed", "skipped"):
            setattr(totals, name, getattr(totals, name) + getattr(report, name))
        if not report.more:
            break
    return RunReport(
        queued=queued,
        sent=totals.sent,
        retried=totals.retried,
        failed=totals.failed,
        skipped=totals.skipped,
    )


# --- wiring --------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Bind huey to the app and wake delivery after any commit that queued an email."""
    huey.init_app(app)
    if not event.contains(Session, "after_commit", kick_after_commit):
        event.listen(Session, "after_commit", kick_after_commit)
        event.listen(Session, "after_rollback", _forget_kick)


def kick_after_commit(session: Session) -> None:
    """Enqueue a delivery task once an email row is committed (never before: no phantom)."""
    if not session.info.pop(outbox.KICK, False):
        return
    try:
        deliver_emails()
    except Exception:
        # The periodic sweep delivers it within a minute; the request that queued it goes on.
        log.warning("Could not wake the email job; the next sweep will deliver.", exc_info=True)


def _forget_kick(session: Session) -> None:
    session.info.pop(outbox.KICK, None)


def is_embedded(app: Flask) -> bool:
    """Return whether jobs run inside `wishnotes serve`: SQLite and no Redis, not immediate."""
    config = app.config
    return (
        database.is_sqlite(config["SQLALCHEMY_DATABASE_URI"])
        and not config.get("REDIS_URL")
        and not config["HUEY_IMMEDIATE"]
    )


class EmbeddedConsumer(Consumer):
    """A consumer that shares its process with the web server.

    It installs no signal handlers (only the main thread may, and they belong to the web
    server there); `serve` stops it when the server returns.
    """

    def _set_signal_handlers(self) -> None:
        pass


def start_embedded_consumer(app: Flask) -> Consumer:
    """Start consumer threads (workers and the periodic scheduler) inside this process."""
    consumer = EmbeddedConsumer(
        huey,
        workers=app.config["HUEY_WORKERS"],
        worker_type="thread",
        periodic=True,
        shutdown_timeout=app.config["SMTP_TIMEOUT"] + 5,
    )
    consumer.start()
    return consumer


def run_worker(app: Flask, *, workers: int | None = None, periodic: bool = True) -> None:
    """Run a huey consumer in the foreground until SIGINT (graceful) or SIGTERM."""
    if app.config["HUEY_IMMEDIATE"]:
        raise RuntimeError("HUEY_IMMEDIATE is on: tasks run where they are called, not in a worker")
    consumer = huey.create_consumer(
        workers=workers or app.config["HUEY_WORKERS"], worker_type="thread", periodic=periodic
    )
    consumer.run()
