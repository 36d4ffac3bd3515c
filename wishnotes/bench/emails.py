"""`wishnotes bench emails`: weekly email throughput and scheduler scan time, printed.

Everything runs on a throwaway instance (SQLite by default, or --database-url, whose tables are
reset) against an aiosmtpd sink in a subprocess on 127.0.0.1 that accepts and discards. Users
are bulk-inserted with dummy key material (registering them would cost one Argon2id run each);
they can send and receive email, nothing else.
"""

from __future__ import annotations

import random
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import Message
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import delete, insert, select

from wishnotes import mail, outbox, schedule
from wishnotes.bench import bench_app, print_table
from wishnotes.extensions import db
from wishnotes.models import OutboxEmail, Pair, ProgramWeek, ScheduleMark, User

SUNDAY_1800 = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
SCAN_ZONES = (
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Helsinki", "Europe/Moscow", "Asia/Dubai",
    "Asia/Kolkata", "Asia/Kathmandu", "Asia/Shanghai", "Asia/Tokyo", "Australia/Adelaide",
    "Australia/Sydney", "Pacific/Auckland", "Pacific/Honolulu", "America/Anchorage",
    "America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York",
    "America/Sao_Paulo", "America/St_Johns", "Africa/Lagos", "Africa/Nairobi",
    "Atlantic/Azores",
)  # fmt: skip
_INSERT_CHUNK = 5000


@contextmanager
def smtp_sink() -> Iterator[int]:
    """Run aiosmtpd's discarding Sink in a subprocess on a free port; yield the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    command += ["-c", "aiosmtpd.handlers.Sink"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        for _ in range(200):  # up to 10 s for it to listen
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise click.ClickException("the SMTP sink did not start") from None
                time.sleep(0.05)
        else:
            raise click.ClickException("the SMTP sink did not start listening")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def insert_users(app: Flask, count: int, *, settings) -> None:
    """Bulk-insert `count` users in pairs, with dummy keys; `settings(i)` gives email settings."""
    now = datetime.now(UTC)
    with app.app_context():
        for start in range(0, count, _INSERT_CHUNK):
            stop = min(start + _INSERT_CHUNK, count)
            pair_rows = [{"id": p + 1, "created_at": now} for p in range(start // 2, stop // 2)]
            if pair_rows:
                db.session.execute(insert(Pair), pair_rows)
            rows = []
            for i in range(start, stop):
                rows.append(
                    {
                        "id": i + 1,
                        "email": f"user{i}@bench.example",
                        "display_name": f"User {i}",
                        "created_at": now,
                        "recovery_confirmed_at": now,
                        "kdf_salt": b"\0" * 32,
                        "kdf_memory_kib": 19456,
                        "kdf_iterations": 2,
                        "kdf_lanes": 1,
                        "auth_digest": b"\0" * 32,
                        "uk_by_password": b"",
                        "uk_by_recovery": b"",
                        "private_keys": b"",
                        "hpke_public": b"",
                        "sign_public": b"",
                        "key_id": "bench",
                        "pair_id": i // 2 + 1,
                        **settings(i),
                    }
                )
            db.session.execute(insert(User), rows)
            db.session.commit()


def start_weeks(app: Flask, pair_count: int, *, share: float, rng: random.Random) -> None:
    """Give a share of the pairs a week under way, so emails describe a day and a prompt."""
    rows = [
        {
            "pair_id": pair,
            "theme_key": "wishes",
            "start_date": date(2026, 2, 26),
            "timezone": "UTC",
            "created_at": datetime.now(UTC),
            "accepted_at": datetime.now(UTC),
        }
        for pair in range(1, pair_count + 1)
        if rng.random() < share
    ]
    with app.app_context():
        for start in range(0, len(rows), _INSERT_CHUNK):
            db.session.execute(insert(ProgramWeek), rows[start : start + _INSERT_CHUNK])
        db.session.commit()


def reset(app: Flask) -> None:
    with app.app_context():
        for model in (OutboxEmail, ScheduleMark, ProgramWeek, User, Pair):
            db.session.execute(delete(model))
        db.session.commit()


def raw_smtplib(port: int, count: int, sample: Message) -> float:
    """Build `count` messages like ours and send them over one connection; return seconds.

    The same builder as the app (mail.build_message), so the ratio measures what the app adds:
    the schedule, rendering, the outbox and its records.
    """
    text = sample.get_payload(0).get_payload(decode=True).decode("utf-8")
    html = sample.get_payload(1).get_payload(decode=True).decode("utf-8")
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for i in range(count):
            message = mail.build_message(
                mail_from=sample["From"],
                to=f"user{i}@bench.example",
                subject=sample["Subject"],
                text=text,
                html=html,
                message_id=f"<raw{i}@bench.example>",
                unsubscribe_url=sample["List-Unsubscribe"].strip("<>"),
                date=SUNDAY_1800,
            )
            smtp.send_message(message)
    return time.perf_counter() - started


def raw_smtplib_prebuilt(port: int, count: int, sample: Message) -> float:
    """Send `count` messages serialized beforehand (the SMTP exchange alone); return seconds."""
    payloads = []
    for i in range(count):
        del sample["To"]
        sample["To"] = f"user{i}@bench.example"
        payloads.append((sample["To"], sample.as_bytes(policy=policy.SMTP)))
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for to, payload in payloads:
            smtp.sendmail("no-reply@bench.example", [to], payload)
    return time.perf_counter() - started


def deliver_all(app: Flask, now: datetime) -> tuple[int, float]:
    with app.app_context():
        transport = mail.transport()
        started = time.perf_counter()
        sent = 0
        for _ in range(100_000):
            report = outbox.deliver_due(
                now=now, transport=transport, limit=app.config["EMAIL_BATCH_SIZE"]
            )
            sent += report.sent
            if not report.more:
                break
        return sent, time.perf_counter() - started


def timed_pass(app: Flask, now: datetime) -> tuple[int, float]:
    with app.app_context():
        started = time.perf_counter()
        queued = schedule.queue_due(now=now).queued
        return queued, time.perf_counter() - started


def sample_message(app: Flask) -> Message:
    with app.app_context():
        row = db.session.scalars(select(OutboxEmail).limit(1)).one()
        body = outbox.contents(row)  # the variant filled in, as delivery sends it
        return mail.build_message(
            mail_from=app.config["MAIL_FROM"],
            to=row.to_address,
            subject=row.subject,
            text=body.text,
            html=body.html,
            message_id=row.message_id,
            unsubscribe_url=outbox.unsubscribe_url(user_id=row.user_id, kind=row.kind),
            date=SUNDAY_1800,
        )


@click.command("emails")
@click.option("--users", default=20_000, show_default=True, type=click.IntRange(2, 200_000))
@click.option("--scan-users", default=100_000, show_default=True, type=click.IntRange(2, 1_000_000))
@click.option("--database-url", default=None, help="Benchmark on this database (tables reset).")
@click.option("--seed", default=1, show_default=True, help="Seed for the spread of settings.")
def bench_emails(users: int, scan_users: int, database_url: str | None, seed: int) -> None:
    """Weekly emails per second against raw smtplib, and one scheduler scan over many users."""
    rng = random.Random(seed)  # noqa: S311 - a spread of settings, not a secret
    users, scan_users = users - users % 2, scan_users - scan_users % 2  # whole pairs
    with tempfile.TemporaryDirectory(prefix="wishnotes-bench-") as folder, smtp_sink() as port:
        app = bench_app(
            database_url,
            Path(folder),
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=port,
            BASE_URL="https://notes.example.org",
        )
        engine = app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0]
        click.echo(f"Weekly email for {users:,} users, {engine}, aiosmtpd sink on :{port}")

        # 1. Schedule, render and deliver: every user due in the same pass.
        insert_users(app, users, settings=lambda i: {"timezone": "UTC"})
        start_weeks(app, users // 2, share=0.5, rng=rng)
        queued, schedule_seconds = timed_pass(app, SUNDAY_1800)
        sample = sample_message(app)
        sent, deliver_seconds = deliver_all(app, SUNDAY_1800)
        if sent != users or queued != users:
            raise click.ClickException(f"queued {queued} and sent {sent} of {users}")
        ours = users / (schedule_seconds + deliver_seconds)

        # 2. Raw smtplib: the same messages built and sent over one connection to the same sink
        # in the same run; and, stricter, the SMTP exchange alone, of bytes built beforehand.
        raw_seconds = raw_smtplib(port, users, sample)
        raw = users / raw_seconds
        bare = users / raw_smtplib_prebuilt(port, users, sample)
        print_table(
            [
                ("schedule + render + queue", f"{schedule_seconds:.2f} s"),
                ("deliver (claim, send, record)", f"{deliver_seconds:.2f} s"),
                ("wishnotes, end to end", f"{ours:,.0f} emails/s"),
                ("raw smtplib", f"{raw:,.0f} emails/s ({raw_seconds:.2f} s)"),
                ("ratio (goal >= 0.5)", f"{ours / raw:.2f}"),
                ("raw, bytes built beforehand", f"{bare:,.0f} emails/s (ratio {ours / bare:.2f})"),
            ]
        )

        # 3. One scheduler scan over many users with settings spread over zones, days, hours.
        reset(app)
        click.echo(f"Scheduler scan over {scan_users:,} users in {len(SCAN_ZONES)} time zones")
        insert_users(
            app,
            scan_users,
            settings=lambda i: {
                "timezone": SCAN_ZONES[i % len(SCAN_ZONES)],
                "weekly_weekday": rng.randrange(7),
                "weekly_hour": rng.randrange(24),
                "daily_email": rng.random() < 0.2,
                "daily_hour": rng.randrange(24),
            },
        )
        start_weeks(app, scan_users // 2, share=0.5, rng=rng)
        timed_pass(app, SUNDAY_1800 - timedelta(hours=1))  # sets the mark, warms the caches
        hourly_queued, hourly = timed_pass(app, SUNDAY_1800)
        _, quiet = timed_pass(app, SUNDAY_1800 + timedelta(minutes=1))

        # The worst case: every user due in the one pass (all chose Sunday 18:00 UTC).
        reset(app)
        insert_users(app, scan_users, settings=lambda i: {"timezone": "UTC"})
        all_queued, all_due = timed_pass(app, SUNDAY_1800)
        print_table(
            [
                ("pass on the hour (spread)", f"{hourly:.2f} s, {hourly_queued:,} queued"),
                ("pass between hours", f"{quiet * 1000:.1f} ms"),
                ("pass with every user due", f"{all_due:.2f} s, {all_queued:,} queued"),
                ("goal (every user due)", "< 5 s"),
            ]
        )
        with app.app_context():
            db.engine.dispose()
