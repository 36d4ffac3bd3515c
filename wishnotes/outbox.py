"""The email outbox: rows queued in the same transaction as their cause, delivered by a job.

Queueing (`queue_*`, `enqueue_many`) only adds rows to the caller's transaction; the caller
commits. Each row has an idempotency key "kind:user:period" that is unique in the database and
inserted with ON CONFLICT DO NOTHING, so a cause replayed or a schedule run twice queues once.

Delivery (`deliver_due`) takes due rows one at a time with a guarded UPDATE (pending, or a
"sending" row whose lease ran out -> sending, with a fresh claim token and lease), commits the
claim, sends, and records "sent" at once, in one autocommitted UPDATE right after the server's
reply. Two workers never send the same row, and a worker stopped at any point leaves at most
the one row it had claimed, which another worker takes after the lease (EMAIL_LEASE).

The only duplicate window: the worker dies after the SMTP server accepted a message and before
its "sent" record is written (one single-row UPDATE, issued as soon as the reply arrives). That
message goes out again after the lease, with the same Message-ID, so mail clients can collapse
the two. Nothing is sent twice in any other case, and nothing is dropped.

Retries: a temporary failure (server down, timeout, 4xx) is retried with exponential backoff
for EMAIL_GIVE_UP_AFTER; a permanent one (5xx) EMAIL_MAX_ATTEMPTS times. Given up rows are
kept with status "failed" and `last_error` (the server's code and words, never a body).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Connection, and_, bindparam, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value

from wishnotes import mail, preferences
from wishnotes.errors import DeliveryError, DeliveryRejected, ServerUnavailable
from wishnotes.extensions import db
from wishnotes.models import OutboxEmail, User

log = logging.getLogger(__name__)

WEEKLY, DAILY, NOTE_NOTICE = preferences.WEEKLY, preferences.DAILY, preferences.NOTE_NOTICE
PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind of email, not a secret
# Kinds whose body holds a secret (a sign-in link): emptied once sent or given up.
SECRET_KINDS = frozenset({PASSWORD_RESET})
PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
KICK = "wishnotes.outbox.kick"  # session.info flag: wake the delivery job after commit
# Queueing and delivery go through Core, not the ORM: thousands of rows in a pass.
_ROWS = OutboxEmail.__table__
_USERS = User.__table__


@dataclass(frozen=True)
class Queued:
    """One email ready to be queued; see `enqueue_many`."""

    user_id: int
    kind: str
    period: str
    to_address: str
    rendered: mail.Rendered
    unsubscribe_url: str | None
    send_after: datetime


@dataclass(frozen=True)
class Policy:
    """How hard delivery tries; built from the app config by `policy()`."""

    max_attempts: int = 5
    backoff_base: timedelta = timedelta(minutes=1)
    backoff_max: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(days=3)
    lease: timedelta = timedelta(minutes=10)

    def retry_delay(self, attempts: int) -> timedelta:
        """Return the wait before try number attempts+1 (doubling, capped)."""
        factor = 2 ** min(max(attempts - 1, 0), 30)
        return min(self.backoff_base * factor, self.backoff_max)


@dataclass
class Report:
    """What one delivery pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    more: bool = False  # the batch was full: more rows may be due
    message_ids: list[str] = field(default_factory=list)


def policy(config: Mapping[str, Any] | None = None) -> Policy:
    """Return the delivery policy of the app config."""
    config = current_app.config if config is None else config
    return Policy(
        max_attempts=config["EMAIL_MAX_ATTEMPTS"],
        backoff_base=config["EMAIL_BACKOFF_BASE"],
        backoff_max=config["EMAIL_BACKOFF_MAX"],
        give_up_after=config["EMAIL_GIVE_UP_AFTER"],
        lease=config["EMAIL_LEASE"],
    )


# --- queueing ------------------------------------------------------------------------------


def idempotency_key(*, kind: str, user_id: int, period: str) -> str:
    return f"{kind}:{user_id}:{period}"


def unsubscribe_url(*, user_id: int, kind: str) -> str:
    """Return the one-click unsubscribe address for one user and one kind of email."""
    token = preferences.unsubscribe_token(
        user_id=user_id, kind=kind, secret_key=current_app.config["SECRET_KEY"]
    )
    return mail.link(f"/unsubscribe/{token}")


def enqueue_many(emails: Iterable[Queued], *, now: datetime) -> int:
    """Add emails to the current transaction, skipping any whose key exists; return how many.

    The caller commits. Safe inside another service's unit of work: a duplicate key is not an
    error and does not spoil the transaction.
    """
    domain = mail.message_domain()
    rows = [_row(email, domain=domain, now=now) for email in emails]
    if not rows:
        return 0
    insert = _insert_ignoring_duplicates(db.session.get_bind().dialect.name)
    inserted = len(db.session.execute(insert.returning(_ROWS.c.id), rows).all())
    if inserted and any(row["next_attempt_at"] <= now for row in rows):
        db.session.info[KICK] = True
    return inserted


def _row(email: Queued, *, domain: str, now: datetime) -> dict[str, Any]:
    return {
        "user_id": email.user_id,
        "kind": email.kind,
        "period": email.period,
        "idempotency_key": idempotency_key(
            kind=email.kind, user_id=email.user_id, period=email.period
        ),
        "to_address": email.to_address,
        "message_id": mail.new_message_id(domain),
        "subject": email.rendered.subject,
        "text_body": email.rendered.text,
        "html_body": email.rendered.html,
        "unsubscribe_url": email.unsubscribe_url,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": email.send_after,
        "created_at": now,
    }


def _insert_ignoring_duplicates(dialect: str):
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(_ROWS).on_conflict_do_nothing(index_elements=["idempotency_key"])


def queue_note_notice(*, recipient: User, now: datetime) -> bool:
    """Queue "something is waiting for you" after a note was committed; commits on its own.

    Respects the recipient's setting, sends at most one per NOTE_NOTICE_INTERVAL (claimed with a
    guarded UPDATE of the recipient's row, so two notes written at once give one notice) and
    waits NOTE_NOTICE_DELAY, so a note opened at once needs no email. At delivery the notice is
    skipped if the recipient has no unopened note any more. Returns whether one was queued.

    It runs after the note's own commit, in a transaction of its own that holds the row lock
    for one statement: inside the note's transaction, every send to the same person would
    wait for the one before to commit. A crash between the two commits loses a notice, never
    a note (the next note claims one). The recipient as loaded says whether one is due, so most
    sends, within the interval, touch nothing here.
    """
    config = current_app.config
    interval: timedelta = config["NOTE_NOTICE_INTERVAL"]
    due = recipient.last_notice_at is None or recipient.last_notice_at <= now - interval
    if not (recipient.note_notice and due):
        return False
    slot = int(now.timestamp() // interval.total_seconds())
    discreet = recipient.discreet_subjects
    unsub = unsubscribe_url(user_id=recipient.id, kind=NOTE_NOTICE)
    rendered = mail.render(
        "note_notice",
        subject=mail.subject_for(NOTE_NOTICE, discreet=discreet),
        name=recipient.display_name,
        discreet=discreet,
        open_url=mail.link("/"),
        settings_url=mail.link("/settings/emails"),
        unsubscribe_url=unsub,
    )
    email = Queued(
        user_id=recipient.id,
        kind=NOTE_NOTICE,
        period=f"slot-{slot}",
        to_address=recipient.email,
        rendered=rendered,
        unsubscribe_url=unsub,
        send_after=now + config["NOTE_NOTICE_DELAY"],
    )
    claim = (
        update(_USERS)
        .where(
            _USERS.c.id == recipient.id,
            _USERS.c.note_notice.is_(True),
            or_(_USERS.c.last_notice_at.is_(None), _USERS.c.last_notice_at <= now - interval),
        )
        .values(last_notice_at=now)
    )
    row = _row(email, domain=mail.message_domain(), now=now)
    if db.engine.dialect.name == "postgresql":
        queued = _claim_and_insert_at_once(claim, row)
    else:
        with db.engine.begin() as connection:
            claimed = connection.execute(claim).rowcount == 1
            queued = claimed and bool(
                connection.execute(_insert_ignoring_duplicates("sqlite"), row).rowcount
            )
    if queued:
        # Keep the loaded row truthful for the rest of this request (nothing is reloaded).
        set_committed_value(recipient, "last_notice_at", now)
    return queued


def _claim_and_insert_at_once(claim, row: dict[str, Any]) -> bool:
    """Claim and queue in one autocommitted statement: one round trip, the lock held for it."""
    claimed = claim.returning(_USERS.c.id).cte("claimed")
    values = select(*(literal(value, _ROWS.c[name].type) for name, value in row.items()))
    insert = (
        postgresql.insert(_ROWS)
        .from_select(list(row), values.select_from(claimed))
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .add_cte(claimed)
        .returning(_ROWS.c.id)
    )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return connection.execute(insert).first() is not None


def queue_password_reset(*, user: User, link: str, now: datetime) -> bool:
    """Queue the email with a reset link; the caller commits. Transactional: no unsubscribe.

    The link is a secret, so the stored bodies are emptied once the email is sent or given up,
    and an earlier reset email still waiting is withdrawn (only the newest link works).
    """
    db.session.execute(
        update(OutboxEmail)
        .where(
            OutboxEmail.user_id == user.id,
            OutboxEmail.kind == PASSWORD_RESET,
            OutboxEmail.status == PENDING,
        )
        .values(status=SKIPPED, text_body="", html_body="", last_error="a newer link was sent")
        .execution_options(synchronize_session=False)
    )
    subject = mail.subject_for(PASSWORD_RESET, discreet=True)
    rendered = mail.render("password_reset", subject=subject, name=user.display_name, link=link)
    email = Queued(
        user_id=user.id,
        kind=PASSWORD_RESET,
        # One row per link: replaying the same call queues nothing new.
        period=hashlib.sha256(link.encode("utf-8")).hexdigest()[:32],
        to_address=user.email,
        rendered=rendered,
        unsubscribe_url=None,
        send_after=now,
    )
    return enqueue_many([email], now=now) == 1


# --- delivery ------------------------------------------------------------------------------


def empty_finished_bodies(*, now: datetime, retention: timedelta) -> int:
    """Empty the bodies of emails finished longer than `retention` ago; return how many.

    The row stays (its idempotency key keeps a cause from being sent twice, and it records what
    happened); only the words go. Sent rows count from their sending, rows given up or skipped
    from their queueing.
    """
    cutoff = now - retention
    count = db.session.execute(
        update(OutboxEmail)
        .where(
            or_(
                and_(OutboxEmail.status == SENT, OutboxEmail.sent_at <= cutoff),
                and_(OutboxEmail.status.in_((FAILED, SKIPPED)), OutboxEmail.created_at <= cutoff),
            ),
            or_(OutboxEmail.text_body != "", OutboxEmail.html_body != ""),
        )
        .values(text_body="", html_body="")
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return count


def due_count(*, now: datetime) -> int:
    """Return how many rows could be delivered now."""
    return len(_due_ids(now=now, limit=None))


def deliver_due(
    *,
    now: datetime,
    transport: mail.Transport,
    limit: int = 100,
    rules: Policy | None = None,
    mail_from: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Report:
    """Deliver up to `limit` due rows over one connection; return what happened."""
    rules = rules or policy()
    mail_from = mail_from or current_app.config["MAIL_FROM"]
    report = Report()
    ids = _due_ids(now=now, limit=limit)
    report.more = len(ids) == limit
    rows = _load(ids)
    users = _load_users({row.user_id for row in rows.values()})
    connection = None
    with ExitStack() as stack:
        ledger = stack.enter_context(_ledger())
        for email_id in ids:
            if should_stop is not None and should_stop():
                report.more = True
                break
            row = rows[email_id]
            token = ledger.claim(email_id, now=now, lease=rules.lease)
            if token is None:
                continue  # another worker has it, or it was just finished
            reason = _skip_reason(row, users.get(row.user_id))
            if reason:
                ledger.finish(row, token, status=SKIPPED, now=now, error=reason)
                report.skipped += 1
                continue
            message = mail.build_message(
                mail_from=mail_from,
                to=row.to_address,
                subject=row.subject,
                text=row.text_body,
                html=row.html_body,
                message_id=row.message_id,
                unsubscribe_url=row.unsubscribe_url,
                date=now,
            )
            try:
                if connection is None:  # opened only once something needs sending
                    connection = stack.enter_context(transport.connect())
                connection.send(message)
            except DeliveryError as exc:
                outcome = ledger.failed(row, token, exc, now=now, rules=rules)
                setattr(report, outcome, getattr(report, outcome) + 1)
                if isinstance(exc, ServerUnavailable):
                    report.more = False  # the server is away: wait for the retry time
                    break
                continue
            # The duplicate window: from the server's reply to the end of this one statement.
            ledger.sent(row, token, now=now)
            report.sent += 1
            report.message_ids.append(row.message_id)
    return report


def _due_ids(*, now: datetime, limit: int | None) -> list[int]:
    query = (
        select(OutboxEmail.id)
        .where(
            OutboxEmail.status.in_((PENDING, SENDING)),
            OutboxEmail.next_attempt_at <= now,
        )
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
    )
    if limit is not None:
        query = query.limit(limit)
    ids = list(db.session.scalars(query))
    db.session.commit()  # end the read, so no snapshot or lock is held while sending
    return ids


def _load(ids: list[int]) -> dict[int, Any]:
    # Plain rows, not ORM objects: they stay readable across the commits below.
    if not ids:
        return {}
    rows = db.session.execute(select(_ROWS).where(_ROWS.c.id.in_(ids))).all()
    db.session.commit()
    return {row.id: row for row in rows}


def _load_users(ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    table = User.__table__
    columns = [table.c.id, table.c.weekly_email, table.c.daily_email, table.c.note_notice]
    rows = db.session.execute(select(*columns).where(table.c.id.in_(ids))).all()
    db.session.commit()
    return {row.id: row for row in rows}


# The two statements every email runs, built once (a statement's construction costs more
# than its execution).
_CLAIM = (
    update(_ROWS)
    .where(
        _ROWS.c.id == bindparam("row_id"),
        _ROWS.c.status.in_((PENDING, SENDING)),
        _ROWS.c.next_attempt_at <= bindparam("due_by"),
    )
    .values(
        status=SENDING,
        claim_token=bindparam("token"),
        next_attempt_at=bindparam("lease_until"),
        attempts=_ROWS.c.attempts + 1,
    )
)
_RECORD_SENT = (
    update(_ROWS)
    .where(_ROWS.c.id == bindparam("row_id"), _ROWS.c.claim_token == bindparam("token"))
    .values(status=SENT, claim_token=None, last_error=None, sent_at=bindparam("sent"))
)


@contextmanager
def _ledger() -> Iterator[_Ledger]:
    """Open the connection a delivery pass writes its claims and records through."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield _Ledger(connection)


class _Ledger:
    """The writes of one delivery pass: single-row UPDATEs, each committing by itself.

    Autocommit statements rather than session transactions: each write stands alone (there is
    nothing to group), costs one round trip instead of three (BEGIN, UPDATE, COMMIT), and a
    "sent" record is durable the moment its statement returns. Every UPDATE names the claim
    token, so a worker whose lease ran out cannot overwrite the record of the one after it.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def claim(self, email_id: int, *, now: datetime, lease: timedelta) -> str | None:
        """Take one due row until the lease ends; return the claim token, or None if taken."""
        token = secrets.token_hex(16)
        params = {"row_id": email_id, "due_by": now, "token": token, "lease_until": now + lease}
        claimed = self.connection.execute(_CLAIM, params).rowcount
        return token if claimed == 1 else None

    def sent(self, row: Any, token: str, *, now: datetime) -> None:
        if row.kind in SECRET_KINDS:
            self.finish(row, token, status=SENT, now=now)
        else:
            self.connection.execute(_RECORD_SENT, {"row_id": row.id, "token": token, "sent": now})

    def finish(
        self, row: Any, token: str, *, status: str, now: datetime, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error}
        if status == SENT:
            values["sent_at"] = now
        if row.kind in SECRET_KINDS or status == SKIPPED:
            values.update(text_body="", html_body="")
        self._update_claimed(row, token, **values)

    def failed(
        self, row: Any, token: str, exc: DeliveryError, *, now: datetime, rules: Policy
    ) -> str:
        """Record a failed try: retry later, or give up. Return the Report field to count."""
        attempts = row.attempts + 1  # the claim counted this try
        if isinstance(exc, DeliveryRejected):
            give_up = attempts >= rules.max_attempts
            why = f"refused {attempts} times; last: {exc.reason}"
        else:
            give_up = now - row.created_at >= rules.give_up_after
            why = f"still failing after {rules.give_up_after}; last: {exc.reason}"
        if give_up:
            # The server's words may quote the address: they stay in the row, not in the log.
            log.warning("Gave up on email %s (%s); see its last_error.", row.id, row.kind)
            self.finish(row, token, status=FAILED, now=now, error=why[:500])
            return "failed"
        self._update_claimed(
            row,
            token,
            status=PENDING,
            next_attempt_at=now + rules.retry_delay(attempts),
            last_error=exc.reason,
        )
        return "retried"

    def _update_claimed(self, row: Any, token: str, **values: Any) -> None:
        self.connection.execute(
            update(_ROWS)
            .where(_ROWS.c.id == row.id, _ROWS.c.claim_token == token)
            .values(claim_token=None, **values)
        )


def _skip_reason(row: Any, user: Any) -> str | None:
    """Return why a row should not be sent after all, or None to send it."""
    if user is None:
        return "the account no longer exists"
    switch = preferences.SWITCHES.get(row.kind)
    if switch is not None and not getattr(user, switch):
        return "turned off by the recipient"
    if row.kind == NOTE_NOTICE and not _has_unread(user.id):
        return "the note was already opened"
    return None


def _has_unread(user_id: int) -> bool:
    """Ask the notes service whether the user still has an unopened note.

    Imported late: notes builds on pairing and crypto, and the outbox must not depend on them
    at import. Prefers `notes.has_unread(user_id)`; falls back to `notes.unread_count(user=)`.
    If neither exists the notice is sent (a missed notice is worse than an extra one).
    """
    try:
        from wishnotes import notes
    except ImportError:
        return True
    has_unread = getattr(notes, "has_unread", None)
    if has_unread is not None:
        return bool(has_unread(user_id))
    unread_count = getattr(notes, "unread_count", None)
    if unread_count is None:
        return True
    user = db.session.get(User, user_id)
    result = user is not None and unread_count(user=user) > 0
    db.session.commit()
    return result
