"""The email outbox: rows queued in the same transaction as their cause, delivered by a job.

Queueing (`queue_*`, `enqueue_many`) only adds rows to the caller's transaction; the caller
commits. Each row has an idempotency key "kind:user:period" that is unique in the database and
inserted with ON CONFLICT DO NOTHING, so a cause replayed or a schedule run twice queues once.

Delivery (`deliver_due`) takes due rows one at a time with a guarded UPDATE (pending, or a
"sending" row whose lease ran out -> sending, with a fresh claim token and lease), sends, and
records "sent" in one UPDATE right after the server's reply, committed with the claim of the
next row (or at the end of the pass): one commit per email. Two workers never send the same
row, and a worker stopped at any point leaves at most the one row it had claimed, which another
worker takes after the lease (EMAIL_LEASE).

Bulk emails (weekly, daily) store their body once per variant (`store_variant`); the row keeps
only the recipient's address, and delivery fills in the name and signs the unsubscribe link.

Two duplicate windows remain, both with the same Message-ID, so mail clients can collapse the
copies; nothing is sent twice in any other case, and nothing is dropped:
1. A dying worker: it stops after the relay accepted a message and before its "sent" record is
   committed (it commits with the claim of the next row). Another worker sends
   the message again after the lease.
2. A late reply: the relay stores the message but its reply to the end of DATA comes after we
   stopped waiting, so the message is retried. The wait for that one reply (SMTP_DATA_TIMEOUT,
   5 minutes) is much longer than for connecting and other commands (SMTP_TIMEOUT), so a dead
   relay is noticed quickly and a slow one rarely gets a copy; the lease is longer still, so
   no second worker starts while the first one waits.

Failures are judged by what they answer:
- The relay refuses or fails the session (connect, greeting, EHLO, STARTTLS, AUTH, MAIL FROM,
  which carries only our sender): no message is at fault. The batch ends, the claimed row is
  released untouched, every worker backs off (exponentially, in `mail_relays`), one warning per
  pass is logged, and no message is ever given up for it.
- A reply to RCPT TO or DATA answers for one message: a temporary one (4xx, or the connection
  lost mid-message) is retried with backoff for EMAIL_GIVE_UP_AFTER from the first failure; a
  permanent one (5xx) counts in `refusals`, and EMAIL_MAX_ATTEMPTS refusals give the row up.
  Given-up rows keep status "failed" and `last_error` (the relay's code and words, never a body).

Emails that carry a secret (the password-reset link) are rendered at delivery: the link is
minted then, only its hash is stored, and the row holds no body at all.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

from flask import current_app
from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value

from wishnotes import i18n, mail, preferences, recovery
from wishnotes.errors import ConnectionLost, DeliveryError, DeliveryRejected, SessionRefused
from wishnotes.extensions import db
from wishnotes.models import MailRelay, OutboxEmail, OutboxVariant, User

log = logging.getLogger(__name__)

WEEKLY, DAILY, NOTE_NOTICE = preferences.WEEKLY, preferences.DAILY, preferences.NOTE_NOTICE
PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind of email, not a secret
RELAY = "smtp"  # the one relay's row in mail_relays
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
    # A bulk email: `rendered` is the variant stored under this id, with slots filled in at
    # delivery (the recipient's name and unsubscribe link); the row itself keeps no body.
    variant_id: int | None = None


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
    relay_refused: str | None = None  # the relay refused the session (why); the batch ended
    relay_retry_at: datetime | None = None  # the relay is backed off until then


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


def _unsubscribe_of(row: Any) -> str | None:
    """A row's one-click unsubscribe link: stored with it, or for a bulk email signed at delivery.

    A scheduler pass queues thousands of bulk emails at once; signing each link then was a
    seventh of the pass. The link is the same whenever it is signed (user, kind, SECRET_KEY).
    """
    if row.unsubscribe_url:
        return row.unsubscribe_url
    if row.variant_id is not None and row.kind in preferences.SWITCHES:
        return unsubscribe_url(user_id=row.user_id, kind=row.kind)
    return None


def enqueue_many(emails: Iterable[Queued], *, now: datetime) -> int:
    """Add emails to the current transaction, skipping any whose key exists; return how many.

    The caller commits. Safe inside another service's unit of work: a duplicate key is not an
    error and does not spoil the transaction.
    """
    domain = mail.message_domain()
    rows = [_row(email, domain=domain, now=now) for email in emails]
    if not rows:
        return 0
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        inserted = _insert_unnested(rows)
    else:
        insert = _insert_ignoring_duplicates(dialect)
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
        "text_body": "" if email.variant_id else email.rendered.text,
        "html_body": "" if email.variant_id else email.rendered.html,
        "unsubscribe_url": email.unsubscribe_url,
        "variant_id": email.variant_id,
        "status": PENDING,
        "attempts": 0,
        "refusals": 0,  # named: an INSERT ... SELECT would not fill in the column's default
        "next_attempt_at": email.send_after,
        "created_at": now,
    }


# PostgreSQL takes a batch as one array per column in one short statement: a multi-row
# VALUES list of thousands of parameters costs more to build and parse than to insert. A column
# with one value for the whole batch (status, kind, period, often subject and variant) goes as
# one parameter instead of an array of copies: dumping arrays is most of the statement's cost.
_ARRAY_TYPES = {
    "user_id": "integer[]",
    "variant_id": "integer[]",
    "attempts": "integer[]",
    "refusals": "integer[]",
    "next_attempt_at": "timestamp[]",
    "created_at": "timestamp[]",
}


def _insert_unnested(rows: list[dict[str, Any]]) -> int:
    columns = list(rows[0])
    values = {
        name: [_naive_utc(row[name]) if name in _TIMES else row[name] for row in rows]
        for name in columns
    }
    same = {name for name, column in values.items() if column.count(column[0]) == len(column)}
    same.discard("idempotency_key")  # unique per row anyway, and unnest needs an array
    varying = [name for name in columns if name not in same]
    chosen = ", ".join(
        f"u.{name}" if name in varying else f"%b::{_ARRAY_TYPES.get(name, 'text[]')[:-2]}"
        for name in columns
    )
    unnest = ", ".join(f"%b::{_ARRAY_TYPES.get(name, 'text[]')}" for name in varying)
    statement = (
        f"INSERT INTO {_ROWS.name} ({', '.join(columns)}) SELECT {chosen} "  # noqa: S608 - column names from the code
        f"FROM unnest({unnest}) AS u({', '.join(varying)}) "
        "ON CONFLICT (idempotency_key) DO NOTHING"
    )
    parameters = [values[name][0] for name in columns if name in same]
    parameters += [values[name] for name in varying]
    # Straight to psycopg, in the session's transaction: binary parameters need no escaping.
    driver = db.session.connection().connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(statement, parameters)
        return cursor.rowcount


_TIMES = frozenset({"next_attempt_at", "created_at"})


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)  # how UTCDateTime stores it


def store_variant(rendered: mail.Rendered, *, now: datetime) -> int:
    """Store the body of a bulk email once, in the caller's transaction; return its id."""
    row = {"text_body": rendered.text, "html_body": rendered.html, "created_at": now}
    return db.session.execute(insert(OutboxVariant).returning(OutboxVariant.id), row).scalar_one()


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
    # In the recipient's language, not the writer's (whose request this runs in).
    with i18n.in_language(recipient.language):
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


def queue_password_reset(*, user: User, request_id: int, now: datetime) -> bool:
    """Queue the email for reset request `request_id`; the caller commits. No unsubscribe.

    The row holds no body: the link is minted and the email rendered at delivery, so the link
    never rests in the database. An earlier reset email still waiting is withdrawn (only the
    newest request works).
    """
    db.session.execute(
        update(OutboxEmail)
        .where(
            OutboxEmail.user_id == user.id,
            OutboxEmail.kind == PASSWORD_RESET,
            OutboxEmail.status == PENDING,
        )
        .values(status=SKIPPED, last_error="a newer link was asked for")
        .execution_options(synchronize_session=False)
    )
    with i18n.in_language(user.language):  # the account's language, not the asking browser's
        subject = mail.subject_for(PASSWORD_RESET, discreet=True)
    email = Queued(
        user_id=user.id,
        kind=PASSWORD_RESET,
        period=f"request-{request_id}",  # one row per request: a replay queues nothing new
        to_address=user.email,
        rendered=mail.Rendered(subject=subject, text="", html=""),
        unsubscribe_url=None,
        send_after=now,
    )
    return enqueue_many([email], now=now) == 1


# --- delivery ------------------------------------------------------------------------------


def empty_finished_bodies(*, now: datetime, retention: timedelta) -> int:
    """Empty the bodies of emails finished longer than `retention` ago; return how many.

    The row stays (its idempotency key keeps a cause from being sent twice, and it records what
    happened); only the words go, and a bulk body once no email still needs it. Sent rows count
    from their sending, rows given up or skipped from their queueing.
    """
    cutoff = now - retention
    count = db.session.execute(
        update(OutboxEmail)
        .where(
            or_(
                and_(OutboxEmail.status == SENT, OutboxEmail.sent_at <= cutoff),
                and_(OutboxEmail.status.in_((FAILED, SKIPPED)), OutboxEmail.created_at <= cutoff),
            ),
            or_(
                OutboxEmail.text_body != "",
                OutboxEmail.html_body != "",
                OutboxEmail.variant_id.is_not(None),
            ),
        )
        .values(text_body="", html_body="", variant_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    # A bulk body goes once no email uses it; one stored by a pass running now is younger.
    db.session.execute(
        delete(OutboxVariant).where(
            OutboxVariant.created_at <= cutoff,
            ~exists().where(OutboxEmail.variant_id == OutboxVariant.id),
        )
    )
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
    relay = _relay()
    if relay is not None and relay.retry_at is not None and relay.retry_at > now:
        report.relay_retry_at = relay.retry_at  # backing off: the relay refused the last session
        return report
    ids = _due_ids(now=now, limit=limit)
    report.more = len(ids) == limit
    rows = _load(ids)
    users = _load_users({row.user_id for row in rows.values()})
    variants = _load_variants({row.variant_id for row in rows.values()} - {None})
    connection = None
    session_taken = False  # the relay answered for a message: it takes sessions again
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
            user = users.get(row.user_id)
            why = _skip_reason(row, user)
            message = None if why else _message(row, user, variants, mail_from, now)
            if message is None:
                why = why or "the link expired or was withdrawn before sending"
                ledger.finish(row, token, status=SKIPPED, now=now, error=why)
                report.skipped += 1
                continue
            try:
                if connection is None:  # opened only once something needs sending
                    connection = stack.enter_context(transport.connect())
                connection.send(message)
            except SessionRefused as exc:
                ledger.release(row, token)  # no message was at fault: this one counts nothing
                report.relay_refused, report.more = exc.reason, False
                break
            except DeliveryError as exc:
                session_taken = True
                outcome = ledger.failed(row, token, exc, now=now, rules=rules)
                setattr(report, outcome, getattr(report, outcome) + 1)
                if isinstance(exc, ConnectionLost):
                    report.more = False  # the connection is gone: the next pass opens one
                    break
                continue
            # The duplicate window: from the server's reply to the end of this one statement.
            ledger.sent(row, token, now=now)
            session_taken = True
            report.sent += 1
            report.message_ids.append(row.message_id)
    if report.relay_refused is not None:
        report.relay_retry_at = _relay_refused(report.relay_refused, now=now, rules=rules)
    elif session_taken and relay is not None and relay.failures:
        _relay_recovered(relay, now=now)
    return report


def _message(
    row: Any, user: Any, variants: dict[int, mail.Rendered], mail_from: str, now: datetime
) -> Message | None:
    """Build the message of a row; None if a reset link can no longer be minted."""
    text, html = _bodies(row, variants, user)
    if row.kind == PASSWORD_RESET:
        token = recovery.mint_reset_token(user_id=row.user_id, now=now)
        if token is None:
            return None
        with i18n.in_language(user.language):
            rendered = mail.render(
                "password_reset",
                subject=row.subject,
                name=user.display_name,
                link=mail.link(f"/reset/{token}"),
            )
        text, html = rendered.text, rendered.html
    return mail.build_message(
        mail_from=mail_from,
        to=row.to_address,
        subject=row.subject,
        text=text,
        html=html,
        message_id=row.message_id,
        unsubscribe_url=_unsubscribe_of(row),
        date=now,
    )


# --- the relay's refusals of whole sessions -------------------------------------------------


def _relay() -> Any:
    """Return the relay's refusal record (a plain row), or None when it never refused."""
    row = db.session.execute(select(MailRelay.__table__).where(MailRelay.name == RELAY)).first()
    db.session.commit()
    return row


def _relay_refused(reason: str, *, now: datetime, rules: Policy) -> datetime:
    """Record a refused session, back off every worker, and log one line for the pass."""
    relay = db.session.get(MailRelay, RELAY)
    if relay is None:
        relay = MailRelay(name=RELAY, failures=0, failing_since=now)
        db.session.add(relay)
    relay.failures += 1
    relay.failing_since = relay.failing_since or now
    relay.retry_at = now + rules.retry_delay(relay.failures)
    relay.last_error = reason[:500]
    retry_at, failures, since = relay.retry_at, relay.failures, relay.failing_since
    try:
        db.session.commit()
    except IntegrityError:  # another worker recorded the same refusal first
        db.session.rollback()
    waiting = db.session.scalar(
        select(func.count()).where(OutboxEmail.status.in_((PENDING, SENDING)))
    )
    db.session.commit()
    # The relay's words at these steps name no recipient; no email is counted or given up.
    log.warning(
        "The SMTP relay refused the session (%s); %d emails wait, none given up. "
        "Sessions refused in a row: %d, since %s; next try at %s.",
        reason,
        waiting,
        failures,
        since.isoformat(timespec="seconds"),
        retry_at.isoformat(timespec="seconds"),
    )
    return retry_at


def _relay_recovered(relay: Any, *, now: datetime) -> None:
    db.session.execute(
        update(MailRelay)
        .where(MailRelay.name == RELAY)
        .values(failures=0, failing_since=None, retry_at=None, last_error=None)
    )
    db.session.commit()
    log.warning(
        "The SMTP relay takes mail again, after refusing %d sessions since %s.",
        relay.failures,
        relay.failing_since.isoformat(timespec="seconds"),
    )


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
    columns = [
        table.c.id,
        table.c.display_name,
        table.c.weekly_email,
        table.c.daily_email,
        table.c.note_notice,
        table.c.language,
    ]
    rows = db.session.execute(select(*columns).where(table.c.id.in_(ids))).all()
    db.session.commit()
    return {row.id: row for row in rows}


def _load_variants(ids: set[int]) -> dict[int, mail.Rendered]:
    if not ids:
        return {}
    rows = db.session.execute(select(OutboxVariant).where(OutboxVariant.id.in_(ids))).scalars()
    found = {
        row.id: mail.Rendered(subject="", text=row.text_body, html=row.html_body) for row in rows
    }
    db.session.commit()
    return found


def contents(row: Any) -> mail.Rendered:
    """Return an outbox row's email as its recipient gets it (a variant filled in)."""
    variants = _load_variants({row.variant_id} - {None})
    user = _load_users({row.user_id}).get(row.user_id)
    text, html = _bodies(row, variants, user)
    return mail.Rendered(subject=row.subject, text=text, html=html)


def _bodies(row: Any, variants: dict[int, mail.Rendered], user: Any) -> tuple[str, str]:
    """Return the text and HTML of a row: its own, or its variant filled in for the user."""
    if row.variant_id is None:
        return row.text_body, row.html_body
    fields = {"name": user.display_name, "unsubscribe_url": _unsubscribe_of(row) or ""}
    filled = mail.fill(variants[row.variant_id], fields)
    return filled.text, filled.html


# The statements every email runs, built once (a statement's construction costs more than its
# execution).
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
    with db.engine.connect() as connection:
        try:
            yield _Ledger(connection)
        except BaseException:
            # What was recorded before the error happened (a message the server accepted) is
            # a fact: keep it if the database still listens.
            with suppress(SQLAlchemyError):
                connection.commit()
            raise
        connection.commit()


class _Ledger:
    """The writes of one delivery pass: single-row UPDATEs, one commit per email.

    Each claim commits together with the outcome of the row before it ("sent", "retry later",
    "skipped"), so a pass commits once per email instead of twice, and a worker killed at any
    point still holds at most the one row it had claimed. Every UPDATE names the claim token,
    so a worker whose lease ran out cannot overwrite the record of the one after it.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def claim(self, email_id: int, *, now: datetime, lease: timedelta) -> str | None:
        """Take one due row until the lease ends; return the claim token, or None if taken.

        Commits, and with it the outcome of the row before: one commit per email.
        """
        token = secrets.token_hex(16)
        params = {"row_id": email_id, "due_by": now, "token": token, "lease_until": now + lease}
        claimed = self.connection.execute(_CLAIM, params).rowcount
        self.connection.commit()
        return token if claimed == 1 else None

    def sent(self, row: Any, token: str, *, now: datetime) -> None:
        self.connection.execute(_RECORD_SENT, {"row_id": row.id, "token": token, "sent": now})

    def release(self, row: Any, token: str) -> None:
        """Give a claimed row back as it was: the try never reached this message."""
        self._update_claimed(
            row, token, status=PENDING, attempts=row.attempts, next_attempt_at=row.next_attempt_at
        )

    def finish(
        self,
        row: Any,
        token: str,
        *,
        status: str,
        now: datetime,
        error: str | None = None,
        **extra: Any,
    ) -> None:
        values: dict[str, Any] = {"status": status, "last_error": error, **extra}
        if status == SENT:
            values["sent_at"] = now
        if status == SKIPPED:
            values.update(text_body="", html_body="")
        self._update_claimed(row, token, **values)

    def failed(
        self, row: Any, token: str, exc: DeliveryError, *, now: datetime, rules: Policy
    ) -> str:
        """Record a failed try: retry later, or give up. Return the Report field to count."""
        attempts = row.attempts + 1  # the claim counted this try
        since = row.failing_since or now
        refusals = row.refusals
        if isinstance(exc, DeliveryRejected):
            refusals += 1
            give_up = refusals >= rules.max_attempts
            why = f"refused {refusals} {'time' if refusals == 1 else 'times'}; last: {exc.reason}"
        else:
            give_up = now - since >= rules.give_up_after
            why = (
                f"temporary failures since {since:%Y-%m-%d %H:%M} UTC, given up after "
                f"{_duration(rules.give_up_after)}; last: {exc.reason}"
            )
        if give_up:
            # The server's words may quote the address: they stay in the row, not in the log.
            log.warning("Gave up on email %s (%s); see its last_error.", row.id, row.kind)
            self.finish(
                row,
                token,
                status=FAILED,
                now=now,
                error=why[:500],
                refusals=refusals,
                failing_since=since,
            )
            return "failed"
        self._update_claimed(
            row,
            token,
            status=PENDING,
            next_attempt_at=now + rules.retry_delay(attempts),
            last_error=exc.reason,
            refusals=refusals,
            failing_since=since,
        )
        return "retried"

    def _update_claimed(self, row: Any, token: str, **values: Any) -> None:
        self.connection.execute(
            update(_ROWS)
            .where(_ROWS.c.id == row.id, _ROWS.c.claim_token == token)
            .values(claim_token=None, **values)
        )


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"


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
