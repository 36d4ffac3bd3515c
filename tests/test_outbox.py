"""The outbox: idempotent queueing in the caller's transaction, and the delivery state machine.

Delivery here goes through a scripted in-memory transport; tests/test_email_delivery.py sends
the same rows to a real SMTP server.
"""

import hashlib
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from wishnotes import accounts, mail, notes, outbox, recovery
from wishnotes.errors import (
    DeliveryDeferred,
    DeliveryRejected,
    ServerUnavailable,
    SessionRefused,
)
from wishnotes.extensions import db, huey
from wishnotes.models import MailRelay, OutboxEmail, PasswordReset, User

from .conftest import PASSWORD, pair_users, register_user

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class ScriptedTransport:
    """Accepts messages, or raises the next scripted failure (None = accept)."""

    def __init__(self, *outcomes) -> None:
        self.outcomes = list(outcomes)
        self.sent = []
        self.connections = 0

    @contextmanager
    def connect(self):
        self.connections += 1
        if self.outcomes and isinstance(self.outcomes[0], SessionRefused):
            raise self.outcomes.pop(0)
        yield self

    def send(self, message) -> None:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent.append(message)


@pytest.fixture
def ada(app_ctx):
    user_id, _ = register_user(app_ctx, "ada@example.com", "Ada")
    return db.session.get(User, user_id)


def queue(user, period="p1", kind="weekly", now=T0, send_after=None) -> int:
    email = outbox.Queued(
        user_id=user.id,
        kind=kind,
        period=period,
        to_address=user.email,
        rendered=mail.Rendered(subject="Your weekly summary", text="Hello", html="<p>Hello</p>"),
        unsubscribe_url=None if kind == outbox.PASSWORD_RESET else "https://x.test/u/1",
        send_after=send_after or now,
    )
    count = outbox.enqueue_many([email], now=now)
    db.session.commit()
    return count


def rows():
    return list(db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)))


def plain_text(message) -> str:
    """The text part of a sent message, read back as a mail client would."""
    parsed = message_from_bytes(message.as_bytes(), policy=default)
    return parsed.get_body(("plain",)).get_content()


def deliver(transport, now=T0, **kwargs):
    return outbox.deliver_due(now=now, transport=transport, **kwargs)


def test_a_repeated_key_queues_one_row_and_keeps_the_callers_transaction_whole(app_ctx, ada):
    ada.display_name = "Ada L"
    first = outbox.Queued(
        user_id=ada.id,
        kind="weekly",
        period="2026-W10",
        to_address=ada.email,
        rendered=mail.Rendered("s", "t", "h"),
        unsubscribe_url=None,
        send_after=T0,
    )
    assert outbox.enqueue_many([first, first], now=T0) == 1
    assert outbox.enqueue_many([first], now=T0) == 0
    db.session.commit()
    assert len(rows()) == 1
    assert db.session.get(User, ada.id).display_name == "Ada L"
    assert rows()[0].idempotency_key == f"weekly:{ada.id}:2026-W10"


def test_a_due_row_is_sent_once_and_recorded_with_its_message_id(app_ctx, ada):
    queue(ada)
    transport = ScriptedTransport()
    report = deliver(transport)
    assert report.sent == 1 and len(transport.sent) == 1
    row = rows()[0]
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, T0)
    assert transport.sent[0]["Message-ID"] == row.message_id
    assert deliver(transport, now=T0 + timedelta(days=1)).sent == 0
    assert len(transport.sent) == 1


def test_a_row_queued_for_later_waits_until_its_time(app_ctx, ada):
    queue(ada, send_after=T0 + timedelta(minutes=10))
    transport = ScriptedTransport()
    assert deliver(transport).sent == 0
    assert deliver(transport, now=T0 + timedelta(minutes=10)).sent == 1


def test_temporary_failures_back_off_exponentially_then_deliver(app_ctx, ada):
    queue(ada)
    transport = ScriptedTransport(*[DeliveryDeferred("451 4.3.0 try later")] * 3)
    now = T0
    waits = []
    for _ in range(3):
        assert deliver(transport, now=now).retried == 1
        row = rows()[0]
        assert row.status == "pending" and row.last_error == "451 4.3.0 try later"
        waits.append(row.next_attempt_at - now)
        assert deliver(transport, now=row.next_attempt_at - timedelta(seconds=1)).retried == 0
        now = row.next_attempt_at
    assert waits == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert deliver(transport, now=now).sent == 1
    assert rows()[0].attempts == 4


def test_backoff_is_capped(app_ctx):
    rules = outbox.Policy(backoff_base=timedelta(minutes=1), backoff_max=timedelta(hours=1))
    assert rules.retry_delay(6) == timedelta(minutes=32)
    assert rules.retry_delay(7) == timedelta(hours=1)  # 64 minutes, capped
    assert rules.retry_delay(40) == timedelta(hours=1)


def test_permanent_refusals_give_up_after_the_set_number_of_tries_and_say_why(app_ctx, ada):
    app_ctx.config["EMAIL_MAX_ATTEMPTS"] = 3
    queue(ada)
    transport = ScriptedTransport(*[DeliveryRejected("550 5.1.1 no such mailbox")] * 5)
    now = T0
    outcomes = []
    for _ in range(3):
        report = deliver(transport, now=now)
        outcomes.append((report.retried, report.failed))
        now = rows()[0].next_attempt_at
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    row = rows()[0]
    assert row.status == "failed"
    assert row.last_error == "refused 3 times; last: 550 5.1.1 no such mailbox"
    assert deliver(transport, now=now + timedelta(days=1)).failed == 0


def test_temporary_failures_give_up_only_after_the_give_up_period(app_ctx, ada):
    queue(ada)
    transport = ScriptedTransport(*[DeliveryDeferred("421 busy")] * 100)
    first = T0 + timedelta(days=5)  # queued long before: the period runs from the first failure
    assert deliver(transport, now=first).retried == 1
    assert deliver(transport, now=first + timedelta(days=2)).retried == 1
    report = deliver(transport, now=first + timedelta(days=3))
    assert report.failed == 1
    row = rows()[0]
    assert row.last_error == (
        "temporary failures since 2026-03-07 09:00 UTC, given up after 3 days; last: 421 busy"
    )
    assert (row.attempts, row.refusals) == (3, 0)


def test_temporary_failures_do_not_count_towards_the_refusal_limit(app_ctx, ada):
    app_ctx.config["EMAIL_MAX_ATTEMPTS"] = 2
    queue(ada)
    outcomes = [DeliveryDeferred("451 4.3.0 try later")] * 4
    outcomes += [DeliveryRejected("550 5.7.1 not now")] * 2
    transport = ScriptedTransport(*outcomes)
    now = T0
    for _ in range(5):
        deliver(transport, now=now)
        now = rows()[0].next_attempt_at
    row = rows()[0]
    assert (row.status, row.attempts, row.refusals) == ("pending", 5, 1)
    assert deliver(transport, now=now).failed == 1
    row = rows()[0]
    assert (row.status, row.refusals) == ("failed", 2)
    assert row.last_error == "refused 2 times; last: 550 5.7.1 not now"


def test_an_unreachable_server_stops_the_batch_and_loses_nothing(app_ctx, ada):
    for period in ("a", "b", "c"):
        queue(ada, period=period)
    down = ScriptedTransport(ServerUnavailable("connect: cannot reach the SMTP server: refused"))
    report = deliver(down)
    assert (report.sent, report.retried, report.failed, report.more) == (0, 0, 0, False)
    assert report.relay_refused == "connect: cannot reach the SMTP server: refused"
    assert [row.status for row in rows()] == ["pending"] * 3
    assert [row.attempts for row in rows()] == [0, 0, 0]
    up = ScriptedTransport()
    assert deliver(up, now=T0 + timedelta(minutes=1)).sent == 3
    assert len({message["Message-ID"] for message in up.sent}) == 3


def test_a_refused_session_counts_against_no_email_and_backs_off_every_worker(app_ctx, ada, caplog):
    app_ctx.config["EMAIL_MAX_ATTEMPTS"] = 2
    for period in ("a", "b", "c"):
        queue(ada, period=period)
    refused = ScriptedTransport(*[SessionRefused("AUTH: 535 5.7.8 bad credentials")] * 20)
    tried_at = []
    now = T0
    caplog.set_level("WARNING", logger="wishnotes.outbox")
    while now < T0 + timedelta(hours=3):  # a pass a minute for three hours
        before = refused.connections
        report = deliver(refused, now=now)
        assert (report.sent, report.retried, report.failed) == (0, 0, 0)
        if refused.connections > before:
            tried_at.append(int((now - T0).total_seconds() // 60))
        now += timedelta(minutes=1)
    # Backing off: 1, 2, 4 ... minutes between tries, capped at an hour.
    assert tried_at == [0, 1, 3, 7, 15, 31, 63, 123]
    assert [(r.status, r.attempts, r.refusals) for r in rows()] == [("pending", 0, 0)] * 3
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == len(tried_at)  # one line per pass that tried, none per email
    assert lines[0].startswith(
        "The SMTP relay refused the session (AUTH: 535 5.7.8 bad credentials); "
        "3 emails wait, none given up."
    )
    relay = db.session.get(MailRelay, outbox.RELAY)
    assert (relay.failures, relay.last_error) == (8, "AUTH: 535 5.7.8 bad credentials")

    fixed = ScriptedTransport()
    assert deliver(fixed, now=relay.retry_at).sent == 3
    assert db.session.get(MailRelay, outbox.RELAY).failures == 0
    assert "takes mail again" in caplog.records[-1].getMessage()


def test_a_claimed_row_is_left_alone_until_its_lease_runs_out(app_ctx, ada):
    queue(ada)
    with outbox._ledger() as ledger:
        assert ledger.claim(rows()[0].id, now=T0, lease=timedelta(minutes=10)) is not None
    transport = ScriptedTransport()
    assert deliver(transport, now=T0 + timedelta(minutes=9)).sent == 0
    assert rows()[0].status == "sending"
    assert deliver(transport, now=T0 + timedelta(minutes=10)).sent == 1
    assert rows()[0].attempts == 2


def test_a_second_worker_cannot_claim_a_row_twice(app_ctx, ada):
    queue(ada)
    row_id = rows()[0].id
    with outbox._ledger() as one, outbox._ledger() as other:
        first = one.claim(row_id, now=T0, lease=timedelta(minutes=10))
        second = other.claim(row_id, now=T0, lease=timedelta(minutes=10))
    assert first is not None and second is None


def test_a_stop_request_between_rows_leaves_the_rest_pending(app_ctx, ada):
    for period in ("a", "b", "c"):
        queue(ada, period=period)
    transport = ScriptedTransport()
    report = deliver(transport, should_stop=lambda: len(transport.sent) >= 1)
    assert (report.sent, report.more) == (1, True)
    assert [row.status for row in rows()] == ["sent", "pending", "pending"]


def test_an_email_turned_off_after_queueing_is_skipped_not_sent(app_ctx, ada):
    queue(ada)
    ada.weekly_email = False
    db.session.commit()
    transport = ScriptedTransport()
    assert deliver(transport).skipped == 1
    assert transport.sent == []
    assert rows()[0].status == "skipped" and rows()[0].text_body == ""


def _ask_reset(user, now=T0) -> int:
    found = recovery.request_reset(email=user.email, now=now)
    assert found is not None
    outbox.queue_password_reset(user=user, request_id=found[1], now=now)
    db.session.commit()
    return found[1]


def _token_in(message) -> str:
    return re.search(r"http://wishnotes\.test/reset/(\S+)", plain_text(message)).group(1)


def test_a_reset_link_is_minted_at_delivery_and_never_stored(app_ctx, ada):
    _ask_reset(ada)
    row = rows()[0]
    assert (row.text_body, row.html_body) == ("", "")
    assert row.unsubscribe_url is None and row.subject == "Reset your password"
    assert db.session.query(PasswordReset).one().token_hash is None  # no token exists yet
    transport = ScriptedTransport()
    deliver(transport)
    message = transport.sent[0]
    token = _token_in(message)
    assert "List-Unsubscribe" not in message
    assert recovery.find_reset(token=token, now=T0).user_id == ada.id
    assert (rows()[0].status, rows()[0].text_body, rows()[0].html_body) == ("sent", "", "")
    db.session.expire_all()
    assert (
        db.session.query(PasswordReset).one().token_hash == hashlib.sha256(token.encode()).digest()
    )


def test_a_retried_reset_email_carries_a_new_link_and_the_old_one_stops_working(app_ctx, ada):
    _ask_reset(ada)
    transport = ScriptedTransport(DeliveryDeferred("451 4.3.0 later"))
    deliver(transport)
    deliver(transport, now=T0 + timedelta(minutes=1))
    token = _token_in(transport.sent[0])
    assert recovery.find_reset(token=token, now=T0).user_id == ada.id


def test_a_reset_email_whose_link_expired_before_delivery_is_skipped(app_ctx, ada):
    _ask_reset(ada)
    transport = ScriptedTransport(ServerUnavailable("connect: cannot reach the SMTP server"))
    deliver(transport)
    report = deliver(transport, now=T0 + recovery.RESET_TTL)
    assert (report.skipped, transport.sent) == (1, [])
    assert rows()[0].last_error == "the link expired or was withdrawn before sending"


def test_a_newer_reset_request_withdraws_the_unsent_older_email(app_ctx, ada):
    first = _ask_reset(ada)
    assert not outbox.queue_password_reset(user=ada, request_id=first, now=T0)
    _ask_reset(ada)
    old, _ = rows()
    assert (old.status, old.last_error) == ("skipped", "a newer link was asked for")
    transport = ScriptedTransport()
    deliver(transport)
    assert len(transport.sent) == 1


# --- "something is waiting for you" ----------------------------------------------------------


@pytest.fixture
def couple(app):
    a, _ = register_user(app, "ada@example.com", "Ada")
    b, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, a, b)
    app.config["NOTE_NOTICE_DELAY"] = timedelta(minutes=10)
    return a, b


def _key(email: str, app) -> bytes:
    return accounts.authenticate(
        email=email, password=PASSWORD, kdf=app.extensions["wishnotes.kdf"]
    ).user_key


def _write(app, now) -> str:
    """Ada writes Bo a note through the notes service, and queues the notice with it."""
    ada = db.session.scalar(select(User).where(User.email == "ada@example.com"))
    note = notes.write_note(user=ada, user_key=_key(ada.email, app), text="a canary", now=now)
    bo = db.session.scalar(select(User).where(User.email == "bo@example.com"))
    outbox.queue_note_notice(recipient=bo, now=now)  # once the notes service calls it, a no-op
    db.session.commit()
    return note.id


def _notices():
    return list(
        db.session.scalars(select(OutboxEmail).where(OutboxEmail.kind == outbox.NOTE_NOTICE))
    )


def test_notices_come_at_most_once_per_six_hours_and_after_a_short_delay(app, couple):
    with app.app_context():
        _write(app, T0)
        _write(app, T0 + timedelta(hours=5, minutes=59))
        assert len(_notices()) == 1
        notice = _notices()[0]
        assert notice.next_attempt_at == T0 + timedelta(minutes=10)
        assert notice.subject == "You have a new note"
        assert "canary" not in notice.text_body + notice.html_body
        _write(app, T0 + timedelta(hours=6))
        assert len(_notices()) == 2


def test_no_notice_when_the_recipient_turned_it_off(app, couple):
    with app.app_context():
        bo = db.session.get(User, couple[1])
        bo.note_notice = False
        db.session.commit()
        _write(app, T0)
        assert _notices() == []


def test_a_notice_for_a_note_opened_before_delivery_is_skipped(app, couple):
    with app.app_context():
        note_id = _write(app, T0)
        bo = db.session.get(User, couple[1])
        notes.open_note(user=bo, user_key=_key(bo.email, app), note_id=note_id, now=T0)
        transport = ScriptedTransport()
        report = deliver(transport, now=T0 + timedelta(minutes=10))
        assert (report.skipped, transport.sent) == (1, [])
        assert _notices()[0].last_error == "the note was already opened"


def test_a_notice_for_an_unopened_note_is_sent(app, couple):
    with app.app_context():
        _write(app, T0)
        transport = ScriptedTransport()
        assert deliver(transport, now=T0 + timedelta(minutes=10)).sent == 1
        assert transport.sent[0]["To"] == "bo@example.com"


# --- waking the job ----------------------------------------------------------------------------


def test_delivery_is_woken_after_the_commit_that_queued_an_email_and_not_on_rollback(app_ctx, ada):
    huey.flush()
    first = outbox.Queued(
        user_id=ada.id,
        kind="weekly",
        period="x",
        to_address=ada.email,
        rendered=mail.Rendered("s", "t", "h"),
        unsubscribe_url=None,
        send_after=T0,
    )
    outbox.enqueue_many([first], now=T0)
    assert huey.pending_count() == 0  # nothing before the commit
    db.session.rollback()
    assert huey.pending_count() == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
    outbox.enqueue_many([first], now=T0)
    db.session.commit()
    assert [task.name for task in huey.pending()] == ["deliver_emails"]


def test_messages_carry_non_ascii_subjects_names_and_bodies_intact():
    message = mail.build_message(
        mail_from="Nötes für zwei <no-reply@example.org>",
        to="ada@example.com",
        subject="Today's prompt: “Where only they will look”",
        text="Grüße, Ada — " + "x" * 300,
        html="<p>Grüße</p>",
        message_id="<1@example.org>",
        unsubscribe_url="https://example.org/unsubscribe/" + "t" * 120,
        date=T0,
    )
    parsed = message_from_bytes(message.as_bytes(), policy=default)
    assert parsed["Subject"] == "Today's prompt: “Where only they will look”"
    assert parsed["From"].addresses[0].display_name == "Nötes für zwei"
    assert parsed.get_body(("plain",)).get_content().startswith("Grüße, Ada — xxx")
    assert parsed["List-Unsubscribe"] == "<https://example.org/unsubscribe/" + "t" * 120 + ">"
    assert parsed["Date"].datetime == T0


@contextmanager
def counted_commits():
    """Count commits: COMMITs of transactions, and writes on autocommit connections."""
    counts = {"commits": 0}

    def on_commit(connection):
        counts["commits"] += 1

    def on_execute(connection, cursor, statement, parameters, context, executemany):
        autocommit = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        if autocommit and statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            counts["commits"] += 1

    sa.event.listen(db.engine, "commit", on_commit)
    sa.event.listen(db.engine, "after_cursor_execute", on_execute)
    try:
        yield counts
    finally:
        sa.event.remove(db.engine, "commit", on_commit)
        sa.event.remove(db.engine, "after_cursor_execute", on_execute)


def test_delivery_commits_once_per_email(app_ctx, ada):
    for period in ("a", "b", "c", "d", "e", "f", "g", "h"):
        queue(ada, period=period)
    with counted_commits() as counts:
        assert deliver(ScriptedTransport()).sent == 8
    # Eight emails; the rest are the pass's reads (due rows, rows, users, variants).
    assert counts["commits"] <= 8 + 5
    assert [row.status for row in rows()] == ["sent"] * 8


def test_a_bulk_email_is_filled_in_for_its_recipient_at_delivery(app_ctx, ada):
    variant = mail.Rendered(
        subject="Your weekly reminder",
        text="Hello \x1fname\x1f, bye: \x1funsubscribe_url\x1f",
        html='<p>Hello \x1fname\x1f</p><a href="\x1funsubscribe_url\x1f">stop</a>',
    )
    ada.display_name = "Ada & <Co>"
    db.session.commit()
    email = outbox.Queued(
        user_id=ada.id,
        kind="weekly",
        period="p1",
        to_address=ada.email,
        rendered=variant,
        unsubscribe_url="https://x.test/u/1",
        send_after=T0,
        variant_id=outbox.store_variant(variant, now=T0),
    )
    outbox.enqueue_many([email], now=T0)
    db.session.commit()
    assert (rows()[0].text_body, rows()[0].html_body) == ("", "")
    transport = ScriptedTransport()
    assert deliver(transport).sent == 1
    assert plain_text(transport.sent[0]).strip() == "Hello Ada & <Co>, bye: https://x.test/u/1"
    html = transport.sent[0].get_payload(1).get_payload(decode=True).decode()
    assert "Hello Ada &amp; &lt;Co&gt;" in html and 'href="https://x.test/u/1"' in html
