"""Email delivery end to end: huey jobs, the outbox and a real SMTP server on 127.0.0.1.

Each test runs with huey on SQLite in the instance folder, and again on Redis when
WISHNOTES_TEST_REDIS_URL is set (CI sets it), each on a queue of its own name.
"""

import datetime as dt
import ipaddress
import os
import signal
import ssl
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from wishnotes import accounts, mail, notes, outbox, recovery, tasks
from wishnotes.cli import main
from wishnotes.extensions import db, huey
from wishnotes.models import MailRelay, OutboxEmail, User

from .conftest import PASSWORD, make_app, reset_database, start_agreed_week
from .processes import children_of, running
from .smtp import SmtpServer, free_port
from .test_schedule import make_pair, set_emails

REDIS_URL = os.environ.get("WISHNOTES_TEST_REDIS_URL")
BACKENDS = ["sqlite", *(["redis"] if REDIS_URL else [])]
T0 = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)  # a Sunday, 18:00 in UTC
SENSITIVE = (
    "intima", "sex", "erotic", "sensual", "desire", "lover", "romanc", "romantic", "naked",
    "closeness", "touch", "bed", "infidel", "unfaithful", "affair", "cheat", "betray",
    "partner", "couple", "relationship", "marriage",
)  # fmt: skip


CANARY = "canary: I long for your touch and our secret affair"


class WorkerKilled(BaseException):
    """Raised inside a job to stop it the way a killed process stops: nothing after it runs."""


def mail_app_for(backend, tmp_path, postgres_engine, server, **overrides):
    settings = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": server.port,
        "SMTP_TIMEOUT": 5.0,
        "BASE_URL": "https://example.org",
        "HUEY_NAME": f"wishnotes-test-{uuid.uuid4().hex[:12]}",
        "NOW": T0,
        **({"REDIS_URL": REDIS_URL} if backend == "redis" else {}),
        **overrides,
    }
    app = make_app(tmp_path, postgres_engine, **settings)
    reset_database(app)
    return app


@pytest.fixture(params=BACKENDS)
def mail_app(request, tmp_path, postgres_engine, smtp_server):
    app = mail_app_for(request.param, tmp_path, postgres_engine, smtp_server)
    yield app
    huey.flush()  # this test's queue only (its name is unique)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def quiet_pair(app):
    """A pair whose own weekly email is not due in these tests (03:00 on Sundays)."""
    return make_pair(app, "ada", "bo", weekly_hour=3)


def run_worker(limit=500) -> None:
    """Run queued huey jobs in this thread, as a consumer does, until the queue is empty."""
    for _ in range(limit):
        if not huey.pending_count():
            return
        task = huey.dequeue()
        if task is not None:
            huey.execute(task)
    raise AssertionError("the queue did not empty")


def scheduler_pass(app, moment) -> None:
    """What the consumer does each minute: the periodic job, then the jobs it queued."""
    app.config["NOW"] = moment
    tasks.schedule_emails()
    run_worker()


def statuses(app):
    with app.app_context():
        return [row.status for row in db.session.scalars(select(OutboxEmail).order_by("id"))]


def queue_many(app, count, now=T0) -> None:
    """Queue `count` weekly emails (distinct periods) for one user, through the outbox."""
    with app.app_context():
        user = db.session.scalar(select(User))
        emails = [
            outbox.Queued(
                user_id=user.id,
                kind=outbox.WEEKLY,
                period=f"p{index}",
                to_address=user.email,
                rendered=mail.Rendered("Your weekly summary", f"text {index}", "<p>html</p>"),
                unsubscribe_url=outbox.unsubscribe_url(user_id=user.id, kind=outbox.WEEKLY),
                send_after=now,
            )
            for index in range(count)
        ]
        outbox.enqueue_many(emails, now=now)
        db.session.commit()


def queue_reset(user, *, now) -> None:
    """Ask for a password reset for `user`, as the forgot-password page does."""
    _, request_id = recovery.request_reset(email=user.email, now=now)
    outbox.queue_password_reset(user=user, request_id=request_id, now=now)
    db.session.commit()


def test_weekly_emails_arrive_at_the_right_local_hour_in_three_zones_across_dst(
    mail_app, smtp_server
):
    zones = {}
    for index, zone in enumerate(("America/New_York", "Europe/Berlin", "Australia/Sydney")):
        make_pair(mail_app, f"a{index}", f"b{index}", timezone=zone)
        zones[f"a{index}@example.com"] = zones[f"b{index}@example.com"] = zone
    arrived = {}  # (address, local date) -> local time of the pass that delivered it
    # Hour by hour through the weekends of the US (8 Mar), EU (29 Mar) and Sydney (5 Apr) changes.
    for saturday in (date(2026, 3, 7), date(2026, 3, 28), date(2026, 4, 4)):
        moment = datetime.combine(saturday, dt.time(), tzinfo=UTC)
        for _ in range(54):
            before = len(smtp_server.messages)
            scheduler_pass(mail_app, moment)
            for message in smtp_server.messages[before:]:
                address = message["To"]
                local = moment.astimezone(ZoneInfo(zones[address]))
                assert (address, local.date()) not in arrived
                arrived[(address, local.date())] = local
            moment += timedelta(hours=1)
    assert len(arrived) == 6 * 3  # six people, on each of the three Sundays
    for local in arrived.values():
        assert (local.weekday(), local.hour) == (6, 18), local
    assert len(set(smtp_server.message_ids())) == len(smtp_server.messages)


class DyingTransport:
    """SMTP for a worker that dies after `sends` messages: before the next send, or (with
    `after_reply`) right after the server accepted the last one and before it is recorded."""

    def __init__(self, config, *, sends: int, after_reply: bool = False) -> None:
        self.smtp = mail.SmtpTransport.from_config(config)
        self.left = sends
        self.after_reply = after_reply

    @contextmanager
    def connect(self):
        with self.smtp.connect() as connection:
            yield self._Dying(connection, self)

    class _Dying:
        def __init__(self, connection, transport) -> None:
            self.connection, self.transport = connection, transport

        def send(self, message) -> None:
            if self.transport.left == 0:
                raise WorkerKilled()
            self.connection.send(message)
            self.transport.left -= 1
            if self.transport.after_reply and self.transport.left == 0:
                raise WorkerKilled()


def _kill_worker_mid_batch(app, **dying) -> None:
    app.config["MAIL_TRANSPORT"] = lambda config: DyingTransport(config, **dying)
    tasks.deliver_emails()
    with pytest.raises(WorkerKilled):
        run_worker()
    app.config["MAIL_TRANSPORT"] = None
    huey.flush()  # the dead worker's job went with it


def test_a_worker_stopped_mid_batch_and_another_started_send_each_email_once(mail_app, smtp_server):
    quiet_pair(mail_app)
    queue_many(mail_app, 12)
    _kill_worker_mid_batch(mail_app, sends=5)
    assert len(smtp_server.messages) == 5
    assert statuses(mail_app).count("sending") == 1  # the row it held when it died

    scheduler_pass(mail_app, T0 + timedelta(minutes=1))  # another worker
    assert len(smtp_server.messages) == 11
    scheduler_pass(mail_app, T0 + mail_app.config["EMAIL_LEASE"] + timedelta(minutes=1))
    ids = smtp_server.message_ids()
    assert len(ids) == len(set(ids)) == 12
    assert statuses(mail_app) == ["sent"] * 12


def test_a_crash_between_the_servers_reply_and_the_record_is_the_only_duplicate(
    mail_app, smtp_server
):
    quiet_pair(mail_app)
    queue_many(mail_app, 6)
    _kill_worker_mid_batch(mail_app, sends=3, after_reply=True)
    scheduler_pass(mail_app, T0 + mail_app.config["EMAIL_LEASE"] + timedelta(minutes=1))
    ids = smtp_server.message_ids()
    assert len(set(ids)) == 6 and len(ids) == 7
    doubled = [mid for mid in set(ids) if ids.count(mid) == 2]
    assert doubled == [ids[2]]  # the third: accepted by the server, not yet recorded
    assert statuses(mail_app) == ["sent"] * 6


def test_with_the_server_down_for_a_while_the_emails_arrive_later_and_none_is_lost(
    mail_app, smtp_server
):
    quiet_pair(mail_app)
    queue_many(mail_app, 5)
    smtp_server.stop()
    moment = T0
    for _ in range(30):  # half an hour of minute passes with the server away
        scheduler_pass(mail_app, moment)
        moment += timedelta(minutes=1)
    assert set(statuses(mail_app)) == {"pending"}
    with mail_app.app_context():
        first = db.session.scalars(select(OutboxEmail).order_by("id")).first()
        assert first.attempts == 0  # an unreachable relay counts against no email
        relay = db.session.get(MailRelay, outbox.RELAY)
        assert relay.failures > 1 and "cannot reach the SMTP server" in relay.last_error
    smtp_server.start()
    for _ in range(120):
        scheduler_pass(mail_app, moment)
        moment += timedelta(minutes=1)
        if statuses(mail_app) == ["sent"] * 5:
            break
    ids = smtp_server.message_ids()
    assert len(ids) == len(set(ids)) == 5
    assert statuses(mail_app) == ["sent"] * 5


def test_a_4xx_reply_is_retried_and_a_5xx_is_given_up_after_the_set_tries(mail_app, smtp_server):
    mail_app.config["EMAIL_MAX_ATTEMPTS"] = 2
    quiet_pair(mail_app)
    queue_many(mail_app, 1)
    smtp_server.handler.reject_data = "451 4.3.0 Please try again later"
    scheduler_pass(mail_app, T0)
    assert statuses(mail_app) == ["pending"] and smtp_server.messages == []
    smtp_server.handler.reject_data = None
    scheduler_pass(mail_app, T0 + timedelta(minutes=1))
    assert statuses(mail_app) == ["sent"] and len(smtp_server.messages) == 1

    queue_many(mail_app, 1, now=T0 + timedelta(days=8))  # same periods: nothing new
    with mail_app.app_context():
        user = db.session.scalar(select(User))
        queue_reset(user, now=T0)
    smtp_server.handler.reject_rcpt = "550 5.1.1 No such user here"
    scheduler_pass(mail_app, T0 + timedelta(minutes=2))
    scheduler_pass(mail_app, T0 + timedelta(minutes=5))
    assert statuses(mail_app) == ["sent", "failed"]
    with mail_app.app_context():
        failed = db.session.scalars(select(OutboxEmail).where(OutboxEmail.status == "failed"))
        assert "550 5.1.1 No such user here" in failed.one().last_error


def _received_text(message) -> str:
    parts = [message["Subject"], message["From"], message["To"]]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts).lower()


def _all_kinds(app, partner_name="Rosalind"):
    """Queue one email of each kind for Ada, whose partner is called `partner_name`."""
    a, b = make_pair(app, "ada", partner_name.lower(), daily_email=True, daily_hour=18)
    with app.app_context():
        db.session.get(User, b).display_name = partner_name
        db.session.commit()
        ada = db.session.get(User, a)
        start_agreed_week(
            user=ada, theme_key="closeness", start_date=date(2026, 2, 26), timezone="UTC", now=T0
        )
        partner = db.session.get(User, b)
        key = accounts.authenticate(
            email=partner.email, password=PASSWORD, kdf=app.extensions["wishnotes.kdf"]
        ).user_key
        # A canary full of words no email may carry; the notice about it must not carry them.
        notes.write_note(user=partner, user_key=key, text=CANARY, now=T0 - timedelta(hours=1))
        outbox.queue_note_notice(recipient=ada, now=T0 - timedelta(hours=1))
        queue_reset(ada, now=T0)
    return a, b


def test_discreet_emails_contain_no_sensitive_word_nor_the_partners_name(mail_app, smtp_server):
    _all_kinds(mail_app)
    mail_app.config["NOW"] = T0
    scheduler_pass(mail_app, T0)
    scheduler_pass(mail_app, T0 + timedelta(days=1))  # Monday: the daily prompt
    received = [m for m in smtp_server.messages if m["To"] == "ada@example.com"]
    subjects = sorted(message["Subject"] for message in received)
    # Ordinary subjects, as any calm app sends them: no mystery ("something is waiting").
    assert subjects == [
        "Reset your password",
        "You have a new note",
        "Your daily summary",
        "Your weekly summary",
    ]
    for message in received:
        text = _received_text(message)
        found = [word for word in (*SENSITIVE, "rosalind", "canary") if word in text]
        assert not found, (message["Subject"], found)


def test_plain_emails_may_name_the_theme_but_never_the_partner(mail_app, smtp_server):
    a, _ = _all_kinds(mail_app)
    with mail_app.app_context():
        set_emails(db.session.get(User, a), discreet_subjects=False)
    scheduler_pass(mail_app, T0)
    received = [m for m in smtp_server.messages if m["To"] == "ada@example.com"]
    weekly = next(m for m in received if m["Subject"].startswith("This week's theme"))
    assert "Closeness" in weekly["Subject"]
    for message in received:
        assert "rosalind" not in _received_text(message)


def test_every_email_says_plainly_what_it_is_and_its_button_has_the_apps_colour(
    mail_app, smtp_server
):
    from wishnotes.mail import BUTTON_COLOUR

    _all_kinds(mail_app)
    scheduler_pass(mail_app, T0)
    received = [m for m in smtp_server.messages if m["To"] == "ada@example.com"]
    assert len(received) >= 3
    css = mail_app.static_folder + "/css/app.css"
    with open(css, encoding="utf-8") as file:
        assert f"--accent: {BUTTON_COLOUR};" in file.read()
    for message in received:
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert f"background:{BUTTON_COLOUR}" in html
        # No circular "open it to see what it is": each says what happened and what to do.
        for vague in ("Something is waiting", "is here. Open it"):
            assert vague not in text and vague not in html
        assert "Open the app" in text or "reset your password" in text.lower()


def test_reminders_carry_date_message_id_text_part_and_one_click_unsubscribe(mail_app, smtp_server):
    _all_kinds(mail_app)
    scheduler_pass(mail_app, T0)
    received = {m["Subject"]: m for m in smtp_server.messages if m["To"] == "ada@example.com"}
    for subject, message in received.items():
        assert message["Date"] and message["Message-ID"].endswith("@example.org>")
        assert message.get_content_type() == "multipart/alternative"
        assert message.get_body(("plain",)) is not None and message.get_body(("html",))
        if subject == "Reset your password":
            assert message["List-Unsubscribe"] is None  # transactional: nothing to leave
            continue
        assert message["List-Unsubscribe"].startswith("<https://example.org/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_consumer_threads_deliver_what_was_queued(mail_app, smtp_server):
    quiet_pair(mail_app)
    queue_many(mail_app, 8)
    consumer = tasks.EmbeddedConsumer(huey, workers=2, worker_type="thread", periodic=False)
    consumer.start()
    try:
        with mail_app.app_context():
            tasks.deliver_emails()
        deadline = time.monotonic() + 20
        while len(smtp_server.messages) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the consumer threads, not for a schedule
    finally:
        consumer.stop(graceful=True)
    assert len(set(smtp_server.message_ids())) == len(smtp_server.messages) == 8


def test_run_due_command_prints_how_many_emails_it_sent(mail_app, smtp_server):
    make_pair(mail_app, "ada", "bo", timezone="Europe/Berlin")
    runner = mail_app.test_cli_runner()
    result = runner.invoke(main, ["emails", "run-due", "--now", "2026-03-01T17:00:00Z"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Sent 2 emails")
    again = runner.invoke(main, ["emails", "run-due", "--now", "2026-03-01T17:30:00+00:00"])
    assert again.output.startswith("Sent 0 emails")
    assert len(smtp_server.messages) == 2
    bad = runner.invoke(main, ["emails", "run-due", "--now", "next sunday"])
    assert bad.exit_code == 2 and "ISO-8601" in bad.output


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, trusted by this process's default context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    return server_context


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_mail_goes_over_implicit_tls_or_starttls_as_configured(
    tmp_path, postgres_engine, tls_files, security
):
    contexts = {"tls_context" if security == "tls" else "starttls_context": tls_files}
    server = SmtpServer(**contexts)
    try:
        app = mail_app_for("sqlite", tmp_path, postgres_engine, server, SMTP_SECURITY=security)
        quiet_pair(app)
        queue_many(app, 2)
        scheduler_pass(app, T0)
        assert len(server.messages) == 2
        assert statuses(app) == ["sent", "sent"]
    finally:
        server.stop()
        huey.flush()


def test_an_unknown_smtp_security_mode_refuses_to_start(tmp_path, postgres_engine):
    from wishnotes.errors import MailNotConfigured

    with pytest.raises(MailNotConfigured, match="SMTP_SECURITY"):
        make_app(tmp_path, postgres_engine, SMTP_SECURITY="ssl-please")


def test_production_refuses_a_plain_http_base_url(tmp_path):
    from wishnotes import create_app
    from wishnotes.errors import MailNotConfigured

    from .conftest import PEPPER, SECRET_KEY

    with pytest.raises(MailNotConfigured, match="https"):
        create_app(
            ENV="production",
            INSTANCE_PATH=str(tmp_path),
            SECRET_KEY=SECRET_KEY,
            PEPPER=PEPPER,
            BASE_URL="http://notes.example.org",
        )


def wait_for_health(server, port: int) -> None:
    """Wait until `wishnotes serve` answers its health check (it may first run migrations)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                assert r.status == 200
                return
        except OSError:
            assert server.poll() is None, "wishnotes serve stopped early"
            time.sleep(0.2)
    raise AssertionError("wishnotes serve did not answer")


def serve_command(tmp_path, port: int) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "WISHNOTES_ENV": "development",
        "WISHNOTES_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    args = [sys.executable, "-m", "wishnotes.cli", "serve", "--port", str(port)]
    return {"args": args, "env": env}


def test_serve_runs_the_job_consumer_in_process_on_the_embedded_default(tmp_path):
    port = free_port()
    with running(**serve_command(tmp_path, port)) as server:
        wait_for_health(server, port)
        assert (tmp_path / "instance" / "huey.sqlite3").exists()  # the consumer's queue
    assert "Background jobs (emails) run in this process." in server.output
    assert server.returncode is not None


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_a_serve_that_ignores_sigint_is_still_stopped(tmp_path):
    # What `pytest &` does to its children: a shell starts background jobs with SIGINT ignored.
    port = free_port()
    with running(
        **serve_command(tmp_path, port), preexec_fn=_ignore_sigint, grace=(2.0, 10.0, 10.0)
    ) as server:
        wait_for_health(server, port)
        pid = server.pid
    assert server.returncode == -signal.SIGTERM  # SIGINT was ignored, SIGTERM was not
    assert pid not in dict(children_of(os.getpid()))
    with pytest.raises(OSError):  # nothing listens any more
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_the_email_benchmark_runs_and_prints_its_figures():
    from click.testing import CliRunner

    from wishnotes.bench.emails import bench_emails

    result = CliRunner().invoke(bench_emails, ["--users", "40", "--scan-users", "200"])
    assert result.exit_code == 0, result.output
    for label in ("emails/s", "ratio (goal >= 0.5)", "pass with every user due"):
        assert label in result.output
    assert "200 queued" in result.output  # every one of the 200 users due in that pass
