"""A relay that refuses or stalls at chosen steps, against the outbox and a real SMTP client.

The server is tests/smtp.py (aiosmtpd on 127.0.0.1) answering chosen codes at the greeting,
EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO or DATA, or replying late. Passes run on the explicit
clock (`tasks.run_due(now=...)`), so minutes of outage take no real time.
"""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from wishnotes import tasks
from wishnotes.bench.relay import outage_drill
from wishnotes.extensions import db, huey
from wishnotes.models import MailRelay, OutboxEmail

from .smtp import SmtpServer
from .test_email_delivery import (
    T0,
    mail_app_for,
    queue_many,
    quiet_pair,
    tls_files,  # noqa: F401 - a fixture: a certificate for STARTTLS
)


@pytest.fixture
def relay(tmp_path, postgres_engine, request):
    """A relay and an app sending to it; `request.param` may hold extra app settings."""
    server = SmtpServer()
    settings = getattr(request, "param", {})
    app = mail_app_for("sqlite", tmp_path, postgres_engine, server, **settings)
    yield app, server
    server.stop()
    huey.flush()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def rows(app):
    with app.app_context():
        found = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
        db.session.commit()
        return [(row.status, row.attempts, row.refusals) for row in found]


def run(app, moment):
    with app.app_context():
        return tasks.run_due(now=moment)


SESSION_REFUSALS = [
    ("greeting", "554 5.3.2 No service for you", {}),
    ("greeting", "421 4.3.2 Too busy, come back later", {}),
    ("EHLO", "550 5.7.1 Not welcome here", {}),
    ("AUTH", "535 5.7.8 Authentication credentials invalid", {"SMTP_USERNAME": "wishnotes"}),
    ("MAIL", "530 5.7.0 Authentication required", {}),
    ("MAIL", "451 4.7.1 Sender rate limited", {}),
]


@pytest.mark.parametrize(("stage", "reply", "settings"), SESSION_REFUSALS)
def test_a_refused_session_gives_up_no_email_and_delivers_each_once_when_fixed(
    tmp_path, postgres_engine, caplog, stage, reply, settings
):
    server = SmtpServer()
    settings = {"SMTP_PASSWORD": "relay password", **settings}
    app = mail_app_for("sqlite", tmp_path, postgres_engine, server, **settings)
    try:
        app.config["EMAIL_MAX_ATTEMPTS"] = 2
        quiet_pair(app)
        queue_many(app, 6)
        server.handler.replies[stage] = reply
        caplog.set_level(logging.WARNING, logger="wishnotes.outbox")
        moment = T0
        for _ in range(40):  # forty minutes of passes, far more tries than EMAIL_MAX_ATTEMPTS
            result = run(app, moment)
            assert (result.sent, result.retried, result.failed) == (0, 0, 0)
            moment += timedelta(minutes=1)
        assert rows(app) == [("pending", 0, 0)] * 6
        assert server.messages == []
        refusals = [r.getMessage() for r in caplog.records if "refused the session" in r.msg]
        assert len(refusals) == 6  # one line a pass that tried: after 0, 1, 3, 7, 15, 31 min
        assert f"{reply}); 6 emails wait, none given up." in refusals[0]
        with app.app_context():
            relay = db.session.get(MailRelay, "smtp")
            assert relay.last_error.endswith(reply)
            retry_at = relay.retry_at

        del server.handler.replies[stage]
        assert run(app, retry_at).sent == 6
        ids = server.message_ids()
        assert len(ids) == len(set(ids)) == 6
        assert [status for status, _, _ in rows(app)] == ["sent"] * 6
    finally:
        server.stop()
        huey.flush()
        with app.app_context():
            db.engine.dispose()


def test_a_refused_starttls_is_a_refused_session(tmp_path, postgres_engine, tls_files):  # noqa: F811
    server = SmtpServer(starttls_context=tls_files)
    app = mail_app_for("sqlite", tmp_path, postgres_engine, server, SMTP_SECURITY="starttls")
    try:
        app.config["EMAIL_MAX_ATTEMPTS"] = 1
        quiet_pair(app)
        queue_many(app, 3)
        server.handler.replies["STARTTLS"] = "454 4.7.0 TLS not available due to temporary reason"
        result = run(app, T0)
        assert result.relay_refused == (
            "STARTTLS: 454 4.7.0 TLS not available due to temporary reason"
        )
        assert rows(app) == [("pending", 0, 0)] * 3
        del server.handler.replies["STARTTLS"]
        assert run(app, result.relay_retry_at).sent == 3
    finally:
        server.stop()
        huey.flush()
        with app.app_context():
            db.engine.dispose()


def test_two_hundred_emails_through_a_five_minute_session_refusal_all_arrive_once(relay):
    app, server = relay

    def refuse(on: bool) -> None:
        server.handler._set("greeting", "554 5.3.2 Service refused for now" if on else None)

    drill = outage_drill(
        app, emails=200, outage=timedelta(minutes=5), refuse=refuse, received=server.message_ids
    )
    assert (drill.delivered, drill.given_up, drill.duplicates, drill.missing) == (200, 0, 0, 0)
    assert drill.sessions_tried == 3  # at 0, 1 and 3 minutes; then it backs off to 7
    assert drill.last_sent_at == timedelta(minutes=7)


def test_replies_to_rcpt_count_against_the_message_and_4xx_not_towards_the_limit(relay):
    app, server = relay
    app.config["EMAIL_MAX_ATTEMPTS"] = 2
    quiet_pair(app)
    queue_many(app, 1)
    server.handler.replies["RCPT"] = "451 4.2.0 Mailbox busy"
    moment = T0
    for _ in range(4):
        run(app, moment)
        moment += timedelta(hours=1)
    assert rows(app) == [("pending", 4, 0)]
    server.handler.replies["RCPT"] = "550 5.1.1 No such user"
    run(app, moment)
    assert rows(app) == [("pending", 5, 1)]
    run(app, moment + timedelta(hours=1))
    assert rows(app) == [("failed", 6, 2)]
    with app.app_context():
        row = db.session.scalars(select(OutboxEmail)).one()
        assert row.last_error == "refused 2 times; last: 550 5.1.1 No such user"


@pytest.mark.parametrize("relay", [{"SMTP_TIMEOUT": 0.3}], indirect=True)
def test_a_relay_that_stalls_at_the_greeting_is_a_refused_session_noticed_quickly(relay):
    app, server = relay
    quiet_pair(app)
    queue_many(app, 2)
    server.handler.stalls["greeting"] = 2.0
    result = run(app, T0)
    assert result.relay_refused == "connect: the SMTP server timed out"
    assert rows(app) == [("pending", 0, 0)] * 2


# --- 9.2: the late reply -------------------------------------------------------------------


@pytest.mark.parametrize("relay", [{"SMTP_TIMEOUT": 0.3, "SMTP_DATA_TIMEOUT": 0.6}], indirect=True)
def test_a_relay_that_stores_a_message_and_replies_late_gets_it_twice(relay):
    app, server = relay
    quiet_pair(app)
    queue_many(app, 2)
    server.handler.stalls["DATA"] = 1.5  # stored at once, "250" after we stopped waiting
    first = run(app, T0)
    assert (first.sent, first.retried) == (0, 1)
    assert len(server.messages) == 1  # the relay has it, though we could not know
    with app.app_context():
        row = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).first()
        assert row.last_error == "no reply in time while sending; it may have arrived"
    server.handler.stalls.clear()
    assert run(app, T0 + timedelta(minutes=1)).sent == 2
    ids = server.message_ids()
    assert len(ids) == 3 and ids.count(ids[0]) == 2  # the copy keeps its Message-ID
    assert [status for status, _, _ in rows(app)] == ["sent", "sent"]


@pytest.mark.parametrize("relay", [{"SMTP_TIMEOUT": 0.3, "SMTP_DATA_TIMEOUT": 5.0}], indirect=True)
def test_the_longer_wait_for_the_reply_to_data_keeps_a_slow_relay_from_a_copy(relay):
    app, server = relay
    quiet_pair(app)
    queue_many(app, 2)
    server.handler.stalls["DATA"] = 1.0  # longer than SMTP_TIMEOUT, within SMTP_DATA_TIMEOUT
    assert run(app, T0).sent == 2
    ids = server.message_ids()
    assert len(ids) == len(set(ids)) == 2


def test_a_non_ascii_address_is_refused_for_that_email_alone_by_a_relay_without_smtputf8(relay):
    app, server = relay
    quiet_pair(app)
    queue_many(app, 2)
    with app.app_context():
        first = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).first()
        first.to_address = "jürgen@exämple.org"
        db.session.commit()
    result = run(app, T0)
    assert (result.sent, result.retried, result.relay_refused) == (1, 1, None)
    assert len(server.messages) == 1
    with app.app_context():
        refused = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).first()
        assert refused.last_error == "the relay takes no address with non-ASCII letters"
        assert refused.refusals == 1


def test_the_relay_benchmark_runs_and_prints_its_figures():
    from click.testing import CliRunner

    from wishnotes.bench.relay import bench_relay

    result = CliRunner().invoke(bench_relay, ["--emails", "20", "--outage-minutes", "2"])
    assert result.exit_code == 0, result.output
    figures = dict(
        line.strip().split("  ", 1) for line in result.output.splitlines() if "  " in line
    )
    assert {key: figures[key].strip() for key in ("delivered", "given up", "duplicates")} == {
        "delivered": "20",
        "given up": "0",
        "duplicates": "0",
    }
