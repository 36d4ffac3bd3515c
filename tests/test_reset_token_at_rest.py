"""A reset link is a secret that grants access: it is never written anywhere in clear.

The token is minted as the email goes to the relay and only its hash is stored, so after a
reset email is queued, delivered and used, the token is in no database file, journal, job store
or log, in any encoding (tests/test_privacy.py `encodings`).
"""

import base64
import http.cookiejar
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from flask_migrate import upgrade

from wishnotes import crypto, mail, outbox
from wishnotes.clock import now as clock_now
from wishnotes.extensions import db
from wishnotes.models import OutboxEmail

from .conftest import CSRF_RE, PEPPER, SECRET_KEY, make_app, post_form, register_user
from .smtp import free_port
from .test_privacy import assert_absent, database_dump, database_files, everything_logged
from .test_reset_web import NEW_PASSWORD, reset_app  # noqa: F401 - a fixture

LINK = re.compile(r"https?://[^/\s]+/reset/([A-Za-z0-9_-]+)")


def _secrets(token: str) -> dict[str, bytes]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return {"the reset token": token.encode(), "the reset token's bytes": raw}


def _wait_for_mail(server, count: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while len(server.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the consumer thread of the server, not for a schedule
    assert len(server.messages) >= count, "the reset email did not arrive"


class Browser:
    """A cookie-keeping HTTP client that posts forms with their CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.read().decode()

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        match = CSRF_RE.search(self.get(path))
        fields = {**fields, "csrf_token": match.group(1) or match.group(2)}
        body = urllib.parse.urlencode(fields).encode()
        with self.opener.open(self.base + path, data=body, timeout=60) as response:
            return response.status, response.read().decode()


def _stop(server: subprocess.Popen) -> None:
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if server.poll() is not None:
            return
        server.send_signal(stop)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            continue


def test_a_used_reset_token_is_in_no_file_job_store_or_server_log(tmp_path, smtp_server):
    instance = tmp_path / "instance"
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "WISHNOTES_ENV": "testing",
        "WISHNOTES_INSTANCE_PATH": str(instance),
        "WISHNOTES_SECRET_KEY": SECRET_KEY,
        "WISHNOTES_PEPPER": PEPPER,
        "WISHNOTES_BASE_URL": f"http://127.0.0.1:{port}",
        "WISHNOTES_SMTP_HOST": "127.0.0.1",
        "WISHNOTES_SMTP_PORT": str(smtp_server.port),
        "WISHNOTES_LOG_LEVEL": "DEBUG",
    }
    # The database as `serve` would build it, with Ada registered through the service.
    setup = make_app(tmp_path, None, SQLALCHEMY_DATABASE_URI=None, INSTANCE_PATH=str(instance))
    with setup.app_context():
        upgrade()
    _, recovery_key = register_user(setup)
    with setup.app_context():
        db.engine.dispose()

    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "wishnotes.cli", "serve", "--port", str(port)],
            env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            browser = Browser(f"http://127.0.0.1:{port}")
            deadline = time.monotonic() + 60
            while True:  # waiting for the process to listen
                try:
                    browser.get("/healthz")
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, (
                        log_path.read_text()
                    )
                    time.sleep(0.2)
            status, page = browser.post("/forgot", {"email": "ada@example.com"})
            assert status == 200 and "Check your inbox" in page
            _wait_for_mail(smtp_server, 1)
            text = smtp_server.messages[0].get_body(("plain",)).get_content()
            token = LINK.search(text).group(1)
            status, page = browser.post(
                f"/reset/{token}",
                {
                    "recovery_key": crypto.format_recovery_key(recovery_key),
                    "password": NEW_PASSWORD,
                },
            )
            assert status == 200 and "recovery kit" in page.lower()
        finally:
            _stop(server)

    files = {path.name: path.read_bytes() for path in instance.iterdir() if path.is_file()}
    assert "wishnotes.sqlite3" in files and "huey.sqlite3" in files  # the database, the jobs
    secrets = _secrets(token)
    for name, content in files.items():
        assert_absent(content, secrets, name)
    server_log = log_path.read_bytes()
    assert b"Background jobs (emails) run in this process." in server_log
    assert_absent(server_log, secrets, "the server log")


def test_the_token_is_in_no_row_journal_job_or_log_record(reset_app, smtp_server, caplog):  # noqa: F811
    register_user(reset_app)
    with everything_logged(caplog):
        client = reset_app.test_client()
        post_form(client, "/forgot", {"email": "ada@example.com"})
        with reset_app.app_context():
            row = db.session.query(OutboxEmail).one()
            assert (row.text_body, row.html_body) == ("", "")  # nothing to leak while it waits
            db.session.commit()
            outbox.deliver_due(now=clock_now(), transport=mail.transport())
        text = smtp_server.messages[-1].get_body(("plain",)).get_content()
        token = LINK.search(text).group(1)
        page = client.get(f"/reset/{token}")
        assert page.status_code == 200
    secrets = _secrets(token)
    assert_absent(database_dump(reset_app), secrets, "the database rows")
    assert_absent(database_files(reset_app), secrets, "the database files")
    for path in Path(reset_app.instance_path).glob("huey*"):
        assert_absent(path.read_bytes(), secrets, path.name)
    # The app's log, not the test relay's (aiosmtpd's "mail.log" shows what it received).
    ours = [record for record in caplog.records if record.name != "mail.log"]
    assert any(record.name.startswith("sqlalchemy") for record in ours)
    logs = "\n".join(record.getMessage() for record in ours).encode()
    assert_absent(logs, secrets, "the log")
