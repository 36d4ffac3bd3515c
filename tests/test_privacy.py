"""DESIGN §4 as evidence: what a stolen database, log, email or cookie reveals, and tampering.

Each test builds its data through the services or the pages and then looks at the bytes an
attacker would have, instead of trusting that the code encrypts.
"""

from __future__ import annotations

import base64
import dataclasses
import http.cookiejar
import logging
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from wishnotes import (
    accounts,
    agreements,
    crypto,
    keyring,
    logins,
    notes,
    outbox,
    pairing,
    places,
    rituals,
    schedule,
)
from wishnotes.errors import DecryptionFailed, KeyChanged, NoteNotFound
from wishnotes.extensions import db
from wishnotes.models import Agreement, Note, Place, PlaceTurn, RitualItem, User

from .conftest import (
    CSRF_RE,
    PASSWORD,
    POSTGRES_URL,
    make_app,
    now,
    pair_users,
    post_form,
    register_user,
    reset_database,
)
from .smtp import free_port
from .test_crypto import assemble, split_envelope
from .test_notes import Person, make_person, pair, read, write

CANARY_TEXT = "canary-note-7f3c9e1d It would please me if we danced in the kitchen."
CANARY_TITLE = "canary-title-5b8a2f60"
NEW_PASSWORD = "moss on the north side of stones"


# --- looking for secrets ----------------------------------------------------------------


def encodings(secret: bytes) -> dict[str, bytes]:
    """Return the forms a secret could take inside other bytes: raw, hex, base64, URL-quoted.

    Base64 is taken at all three byte alignments, keeping only whole groups, so a secret that
    sits anywhere inside a larger base64 blob is still found.
    """
    forms = {
        "raw": secret,
        "hex": secret.hex().encode(),
        "HEX": secret.hex().upper().encode(),
        "url": quote_plus(secret).encode(),
        "url%20": quote(secret, safe="").encode(),
    }
    for shift in range(3):
        chunk = secret[shift:]
        chunk = chunk[: len(chunk) // 3 * 3]
        forms[f"base64+{shift}"] = base64.b64encode(chunk)
        forms[f"base64url+{shift}"] = base64.urlsafe_b64encode(chunk)
    return forms


def assert_absent(haystack: bytes, secrets: dict[str, bytes], where: str) -> None:
    for name, secret in secrets.items():
        for form, needle in encodings(secret).items():
            assert needle not in haystack, f"{name} found as {form} in {where}"


def database_dump(app) -> bytes:
    """Every value of every row of every table, as an attacker with read access gets it."""
    parts = []
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(sa.select(table)):
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\x00".join(parts)


def database_files(app) -> bytes:
    """The raw bytes of the SQLite file and its journals (empty on PostgreSQL)."""
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite":
        return b""
    path = Path(url.database)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


class CookieJarRecorder:
    """Wrap the WSGI app and keep every Set-Cookie header it sends."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.headers: list[str] = []

    def __call__(self, environ, start_response):
        def recording(status, headers, exc_info=None):
            self.headers += [value for name, value in headers if name.lower() == "set-cookie"]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, recording)


class CapturedMail:
    """A mail transport that keeps the messages instead of sending them."""

    def __init__(self) -> None:
        self.messages = []

    @contextmanager
    def connect(self):
        yield self

    def send(self, message) -> None:
        self.messages.append(message)


@contextmanager
def everything_logged(caplog):
    """Log at DEBUG everywhere, SQL statements included, for the length of the block."""
    sql = logging.getLogger("sqlalchemy.engine")
    old = sql.level
    sql.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.DEBUG):
            yield
    finally:
        sql.setLevel(old)


def _kit(page: str) -> tuple[bytes, int, str]:
    groups = re.findall(r"<code>([A-Z2-7]{4})</code>", page)
    ask = int(re.search(r"type group (\d)", page).group(1)) - 1
    return crypto.parse_recovery_key("".join(groups)), ask, "-".join(groups)


def _register(client, email: str, name: str) -> bytes:
    page = post_form(
        client, "/register", {"email": email, "display_name": name, "password": PASSWORD}
    ).get_data(as_text=True)
    key, ask, kit = _kit(page)
    confirmed = post_form(
        client,
        "/recovery-kit/confirm",
        {"typed": kit.split("-")[ask]},
        token_from="/recovery-kit/",
    )
    assert confirmed.status_code == 302
    return key


def key_session_halves(set_cookies: list[str]) -> dict[str, bytes]:
    """Return the session id and session key of every key-session cookie that was set."""
    found = {}
    for header in set_cookies:
        match = re.match(r"wn_keys=([A-Za-z0-9_=-]+);", header)
        if match and match.group(1):
            raw = base64.urlsafe_b64decode(match.group(1))
            found[f"session key {len(found) // 2}"] = raw[16:]
            found[f"session id {len(found) // 2}"] = raw[:16]
    return found


# --- the canary -------------------------------------------------------------------------


def test_note_text_password_and_recovery_key_are_nowhere_an_attacker_looks(app, caplog, capfd):
    recorder = CookieJarRecorder(app.wsgi_app)
    app.wsgi_app = recorder
    ada, bo = app.test_client(), app.test_client()
    with everything_logged(caplog):
        ada_recovery = _register(ada, "ada@example.com", "Ada")
        bo_recovery = _register(bo, "bo@example.com", "Bo")
        invite = post_form(ada, "/pair/invite", token_from="/pair/").get_data(as_text=True)
        join = re.search(r'value="http://wishnotes\.test(/pair/join/[^"]+)"', invite).group(1)
        assert post_form(bo, join).status_code == 302
        sent = post_form(bo, "/notes/new", {"body": CANARY_TEXT, "title": CANARY_TITLE})
        assert sent.status_code == 302
        with app.app_context():
            note_id = db.session.scalar(select(Note.id))
        page = ada.get(f"/notes/{note_id}").get_data(as_text=True)
        assert CANARY_TEXT in page  # the one place it belongs: the partner's screen
        post_form(
            ada, f"/notes/{note_id}/answer", {"choice": "later"}, token_from=f"/notes/{note_id}"
        )
        changed = post_form(
            ada,
            "/settings/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert changed.status_code == 302
        # Locked while writing, then unlocked with the password on the compose page.
        with app.app_context():
            db.session.execute(sa.text("DELETE FROM key_sessions"))
            db.session.commit()
        unlocked_send = post_form(
            ada,
            "/notes/new",
            {"body": CANARY_TEXT, "title": CANARY_TITLE, "password": NEW_PASSWORD},
        )
        assert unlocked_send.status_code == 302
        post_form(bo, "/login", {"email": "bo@example.com", "password": "a wrong guess here"})
        with app.app_context():
            later = now() + timedelta(hours=1)
            captured = CapturedMail()
            outbox.deliver_due(now=later, transport=captured)
            user_key = accounts.authenticate(
                email="ada@example.com", password=NEW_PASSWORD, kdf=app.extensions["wishnotes.kdf"]
            ).user_key
            db.session.commit()
    app.wsgi_app = recorder.wsgi_app

    secrets = {
        "note text": CANARY_TEXT.encode(),
        "note title": CANARY_TITLE.encode(),
        "password": PASSWORD.encode(),
        "new password": NEW_PASSWORD.encode(),
        "Ada's recovery key": ada_recovery,
        "Ada's recovery key as printed": crypto.format_recovery_key(ada_recovery).encode(),
        "Ada's recovery key unbroken": crypto.format_recovery_key(ada_recovery)
        .replace("-", "")
        .encode(),
        "Bo's recovery key": bo_recovery,
        "Bo's recovery key as printed": crypto.format_recovery_key(bo_recovery).encode(),
        "Ada's user key": user_key,
    }
    stored = database_files(app) + database_dump(app)
    assert b"canary" not in stored and len(stored) > 10_000
    assert_absent(stored, secrets, "the database")
    logs = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    logs += "".join(capfd.readouterr())
    assert "INSERT INTO notes" in logs  # SQL was logged, with its values hidden
    assert_absent(logs.encode(), secrets, "the log")
    emails = b"".join(message.as_bytes() for message in captured.messages)
    assert captured.messages  # the "a note is waiting" email went out, and says nothing more
    assert_absent(emails, secrets, "the emails")
    cookies = "\n".join(recorder.headers).encode()
    assert b"wn_keys=" in cookies and b"wn_session=" in cookies
    assert_absent(cookies, secrets, "the cookies")
    # The session key is the browser's half of every key session: never in the database.
    session_keys = key_session_halves(recorder.headers)
    assert len(session_keys) >= 4  # registration twice, password change, unlock on compose
    assert_absent(stored, session_keys, "the database")
    assert_absent(logs.encode(), session_keys, "the log")
    for client in (ada, bo):
        jar = "\n".join(f"{c.key}={c.value}" for c in client._cookies.values()).encode()
        assert_absent(jar, secrets, "a browser's cookie jar")


# --- a real server: its log, its job store and the SQLite -wal file ---------------------


class Browser:
    """A cookie-keeping HTTP client for a real server, posting forms with their CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = None if data is None else urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(  # noqa: S310 - http to the test server only
            self.base + path, data=body, headers={"Origin": self.base} if body else {}
        )
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def get(self, path: str) -> str:
        status, page = self.request(path)
        assert status == 200, (path, status)
        return page

    def post(self, path: str, data: dict | None = None, *, token_from: str | None = None) -> str:
        match = CSRF_RE.search(self.get(token_from or path))
        form = {"csrf_token": match.group(1) or match.group(2), **(data or {})}
        status, page = self.request(path, form)
        assert status == 200, (path, status)
        return page

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)


@pytest.fixture
def served(tmp_path, smtp_server):
    """`wishnotes serve` in its own process on SQLite, logging at DEBUG into a file."""
    port = free_port()
    instance = tmp_path / "instance"
    log_path = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WISHNOTES_")}
    env.update(
        WISHNOTES_ENV="development",
        WISHNOTES_INSTANCE_PATH=str(instance),
        WISHNOTES_LOG_LEVEL="DEBUG",
        WISHNOTES_BASE_URL=f"http://127.0.0.1:{port}",
        WISHNOTES_SMTP_HOST="127.0.0.1",
        WISHNOTES_SMTP_PORT=str(smtp_server.port),
        WISHNOTES_RATELIMIT_ENABLED="false",
        WISHNOTES_HUEY_WORKERS="1",
        WISHNOTES_KDF_CONCURRENCY="1",
    )
    command = [sys.executable, "-m", "wishnotes.cli", "serve", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).close()  # noqa: S310
                break
            except OSError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield SimpleNamespace(base=base, instance=instance, log=log_path, process=process)
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C: waitress and the job consumer stop
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _register_over_http(browser: Browser, email: str, name: str) -> bytes:
    page = browser.post(
        "/register",
        {"email": email, "display_name": name, "password": PASSWORD},
        token_from="/register",
    )
    key, ask, kit = _kit(page)
    browser.post(
        "/recovery-kit/confirm", {"typed": kit.split("-")[ask]}, token_from="/recovery-kit/"
    )
    return key


def _instance_files(instance: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(instance.glob("*.sqlite3*"))}


def test_a_real_server_keeps_secrets_out_of_its_log_job_store_and_wal(served, smtp_server):
    ada, bo = Browser(served.base), Browser(served.base)
    ada_recovery = _register_over_http(ada, "ada@example.com", "Ada")
    bo_recovery = _register_over_http(bo, "bo@example.com", "Bo")
    invite = ada.post("/pair/invite", token_from="/pair/")
    link = re.search(r'value="http://127\.0\.0\.1:\d+(/pair/join/([^"]+))"', invite)
    bo.post(link.group(1))
    bo.post("/notes/new", {"body": CANARY_TEXT, "title": CANARY_TITLE}, token_from="/notes/new")
    note_id = re.search(r'href="/notes/([0-9a-f]{32})"', ada.get("/notes/")).group(1)
    assert CANARY_TEXT in ada.get(f"/notes/{note_id}")  # written and read through HTTP
    ada.post(f"/notes/{note_id}/answer", {"choice": "later"}, token_from=f"/notes/{note_id}")
    # An email, so the job store is used: the embedded consumer delivers it.
    Browser(served.base).post("/forgot", {"email": "bo@example.com"})
    deadline = time.monotonic() + 60
    while not smtp_server.messages:
        assert time.monotonic() < deadline, "no email was delivered"
        time.sleep(0.2)

    while_running = _instance_files(served.instance)
    assert while_running.get("wishnotes.sqlite3-wal"), "the database runs in WAL mode"
    assert "huey.sqlite3" in while_running
    assert b"bo@example.com" in b"".join(while_running.values())  # the scan sees real rows
    secrets = {
        "note text": CANARY_TEXT.encode(),
        "note title": CANARY_TITLE.encode(),
        "password": PASSWORD.encode(),
        "Ada's recovery key": ada_recovery,
        "Ada's recovery key as printed": crypto.format_recovery_key(ada_recovery).encode(),
        "Bo's recovery key": bo_recovery,
        "Bo's recovery key as printed": crypto.format_recovery_key(bo_recovery).encode(),
        "the invite token": link.group(2).encode(),
    }
    for who, browser in (("Ada", ada), ("Bo", bo)):
        raw = base64.urlsafe_b64decode(browser.cookie("wn_keys"))
        secrets[f"{who}'s session id"], secrets[f"{who}'s session key"] = raw[:16], raw[16:]
    for name, data in while_running.items():
        assert_absent(data, secrets, f"{name} while the server runs")

    served.process.send_signal(signal.SIGINT)
    served.process.wait(timeout=30)
    log = served.log.read_bytes()
    # A real log: requests' SQL statements (values hidden) and the job that sent the email.
    assert b"INSERT INTO notes" in log and b"Executing wishnotes.tasks.deliver_emails" in log
    assert b"canary" not in log
    assert_absent(log, secrets, "the server log")
    for name, data in _instance_files(served.instance).items():
        assert b"canary" not in data
        assert_absent(data, secrets, f"{name} after the server stopped")
    emails = b"".join(message.as_bytes() for message in smtp_server.messages)
    assert_absent(emails, secrets, "the emails")


# --- a stolen database ------------------------------------------------------------------


def _forged_login(app, client, user_id: int) -> None:
    """Sign a login cookie with the stolen SECRET_KEY, as an attacker holding it could.

    A login cookie names a login row by a token only its hash reveals, so the attacker first
    writes a login of their own into their copy of the database.
    """
    with app.app_context():
        opened = logins.open_login(
            user=db.session.get(User, user_id),
            device="Forged",
            remember=False,
            now=now(),
            idle=timedelta(days=1),
            remembered=timedelta(days=1),
        )
        db.engine.dispose()
    serializer = app.session_interface.get_signing_serializer(app)
    value = serializer.dumps({"_user_id": opened.token, "_fresh": True})
    client.set_cookie("wn_session", value, domain="wishnotes.test")


def test_a_database_copy_with_every_server_secret_opens_no_note(tmp_path, postgres_engine):
    original = make_app(tmp_path / "original", postgres_engine)
    reset_database(original)
    ada_id, _ = register_user(original, "ada@example.com", "Ada")
    bo_id, _ = register_user(original, "bo@example.com", "Bo")
    pair_users(original, ada_id, bo_id)
    writer = original.test_client()
    post_form(writer, "/login", {"email": "ada@example.com", "password": PASSWORD})
    assert post_form(writer, "/notes/new", {"body": CANARY_TEXT}).status_code == 302
    with original.app_context():
        note_id = db.session.scalar(select(Note.id))
        db.engine.dispose()

    # The thief's copy: the database, SECRET_KEY and PEPPER, and no cookie of anyone's.
    if POSTGRES_URL:
        copy_url = POSTGRES_URL
    else:
        copy = tmp_path / "stolen" / "test.sqlite3"
        copy.parent.mkdir()
        for part in (tmp_path / "original").glob("test.sqlite3*"):  # with its journal, if any
            shutil.copy(part, copy.parent / part.name)
        copy_url = f"sqlite:///{copy}"
    thief = make_app(
        tmp_path / "thief",
        postgres_engine,
        SQLALCHEMY_DATABASE_URI=copy_url,
        SECRET_KEY=original.config["SECRET_KEY"],
        PEPPER=original.config["PEPPER"],
    )
    stranger = thief.test_client()
    assert "/login" in stranger.get(f"/notes/{note_id}").headers["Location"]
    forger = thief.test_client()
    _forged_login(thief, forger, bo_id)
    forged = forger.get(f"/notes/{note_id}")
    assert forged.status_code == 302 and "/unlock" in forged.headers["Location"]
    assert CANARY_TEXT not in forged.get_data(as_text=True)

    # Every key-sized value the thief holds fails to unwrap every wrapped key in the database.
    with thief.app_context():
        secrets_ = [thief.config["SECRET_KEY"].encode(), thief.config["PEPPER_BYTES"]]
        blobs = [bytes(v) for v in database_values(LARGE_BINARY_COLUMNS)]
        candidates = {bytes(32)} | {s[:32] for s in secrets_} | {s[-32:] for s in secrets_}
        candidates |= {blob[i : i + 32] for blob in blobs for i in (0, 1, 13) if len(blob) >= 45}
        candidates |= set(_derived_keys(thief, secrets_))
        wrapped = [(user.id, blob, purpose) for user, blob, purpose in wrapped_blobs()]
        assert len(wrapped) >= 8 and len(candidates) > 30
        for user_id, blob, purpose in wrapped:
            for candidate in candidates:
                with pytest.raises(DecryptionFailed):
                    crypto.unwrap(candidate, blob, purpose=purpose, user_id=user_id)
        db.engine.dispose()

    # The right password is the missing piece: with it, the same copy opens the note.
    unlocked = post_form(forger, f"/unlock?next=/notes/{note_id}", {"password": PASSWORD})
    assert unlocked.status_code == 302
    assert CANARY_TEXT in forger.get(f"/notes/{note_id}").get_data(as_text=True)
    with thief.app_context():
        db.engine.dispose()


LARGE_BINARY_COLUMNS = (
    (User, ("uk_by_password", "uk_by_recovery", "private_keys", "keyring", "auth_digest")),
    (Note, ("envelope", "answer_envelope")),
)


def database_values(columns):
    for model, names in columns:
        for row in db.session.execute(select(*(getattr(model, n) for n in names))):
            yield from (value for value in row if value is not None)
    for (value,) in db.session.execute(sa.text("SELECT wrapped_user_key FROM key_sessions")):
        yield value


def wrapped_blobs():
    """Every blob wrapped under some key, with the purpose it was wrapped for."""
    for user in db.session.scalars(select(User)):
        yield user, user.uk_by_password, accounts.PURPOSE_UK_PASSWORD
        yield user, user.uk_by_recovery, accounts.PURPOSE_UK_RECOVERY
        yield user, user.private_keys, accounts.PURPOSE_PRIVATE_KEYS
        if user.keyring is not None:
            yield user, user.keyring, keyring.PURPOSE_KEYRING
    rows = db.session.execute(sa.text("SELECT user_id, wrapped_user_key FROM key_sessions"))
    for user_id, blob in rows:
        yield db.session.get(User, user_id), bytes(blob), "key-session"


def _derived_keys(app, secrets_):
    """Keys derivable from the server secrets alone: empty or guessed passwords, no recovery."""
    kdf = app.extensions["wishnotes.kdf"]
    for user in db.session.scalars(select(User)):
        for guess in ("", user.email, user.display_name, app.config["SECRET_KEY"]):
            yield kdf.derive(guess, salt=user.kdf_salt, params=accounts.kdf_params_of(user))[1]
        for secret in secrets_:
            fake_recovery = (secret + bytes(20))[:20]
            yield crypto.recovery_kek(fake_recovery, user_id=user.id, pepper=kdf.pepper)


# --- tampering --------------------------------------------------------------------------


@pytest.fixture
def folks(app_ctx) -> dict[str, Person]:
    people = {name: make_person(app_ctx, name) for name in ("ada", "bo", "cy", "dee")}
    pair(people["ada"], people["bo"])
    pair(people["cy"], people["dee"])
    return people


def _reject_every(note: Note, reader: Person, column: str) -> int:
    original = getattr(note, column)
    rejected = 0
    for index in range(len(original)):
        flipped = bytearray(original)
        flipped[index] ^= 0x01
        setattr(note, column, bytes(flipped))
        with pytest.raises(DecryptionFailed):
            read(reader, note)
        rejected += 1
    setattr(note, column, original)
    return rejected


def test_flipping_any_byte_of_a_note_or_its_answer_is_rejected(folks):
    ada, bo = folks["ada"], folks["bo"]
    note = write(ada, CANARY_TEXT)
    notes.answer_note(user=bo.user, user_key=bo.key, note_id=note.id, choice="yes", now=now())
    with db.session.no_autoflush:
        assert _reject_every(note, bo, "envelope") == len(note.envelope) > 2500
        assert _reject_every(note, ada, "answer_envelope") == len(note.answer_envelope)
    db.session.rollback()
    assert read(bo, note).text == CANARY_TEXT  # the untouched note still opens


def _store(note: Note, envelope: bytes) -> None:
    note.envelope = envelope
    db.session.commit()


HEADER_EDITS = {
    "note_id": "0" * 32,
    "pair_id": 999,
    "sender_id": 999,
    "recipient_id": 999,
    "created_at": 1,
    "sealed": True,
    "kind": "answer",
    "version": 2,
    "suite": "X25519/HKDF_SHA256/CHACHA20_POLY1305",
}


@pytest.mark.parametrize("field", [*HEADER_EDITS, "sender_key_id", "recipient_key_id"])
def test_editing_any_header_field_is_rejected_even_when_signed_by_the_writer(folks, field):
    ada, bo, cy = folks["ada"], folks["bo"], folks["cy"]
    note = write(ada, CANARY_TEXT)
    layout = split_envelope(note.envelope)
    header = crypto.envelope_header(note.envelope)
    value = HEADER_EDITS.get(field, keyring.public_keys(cy.user).key_id)
    header_bytes = dataclasses.replace(header, **{field: value}).canonical()
    assert header_bytes != header.canonical()
    ring = keyring.unlock(user=ada.user, user_key=ada.key)
    for resign in (True, False):  # re-signed by the real writer, or with the old signature
        envelope = assemble(dataclasses.replace(layout, header_bytes=header_bytes), ring.keys)
        if not resign:
            envelope = envelope[:-64] + note.envelope[-64:]
        _store(note, envelope)
        with pytest.raises(DecryptionFailed):
            read(bo, note)


@pytest.mark.parametrize(
    ("column", "value"),
    [("created_at", "+1s"), ("sealed", True), ("sender_id", "bo"), ("recipient_id", "ada")],
)
def test_editing_a_notes_row_is_rejected(folks, column, value):
    ada, bo = folks["ada"], folks["bo"]
    note = write(ada, CANARY_TEXT)
    if value == "+1s":
        value = note.created_at + timedelta(seconds=1)
    elif value in ("ada", "bo"):
        value = folks[value].id
    setattr(note, column, value)
    db.session.commit()
    refused = 0
    for reader in (ada, bo):
        try:
            opened = read(reader, note)
        except (DecryptionFailed, NoteNotFound):
            refused += 1
        else:
            # Only a flipped sealed flag lets a page render, and then it hides the writer's copy.
            assert column == "sealed" and reader is ada and opened.text is None
    assert refused >= 1


def test_swapping_stanzas_within_or_between_notes_is_rejected(folks):
    ada, bo = folks["ada"], folks["bo"]
    note, other = write(ada, CANARY_TEXT), write(ada, "another")
    ring = keyring.unlock(user=ada.user, user_key=ada.key)
    layout = split_envelope(note.envelope)
    (role_a, blob_a), (role_b, blob_b) = layout.stanzas
    swapped = dataclasses.replace(layout, stanzas=[(role_a, blob_b), (role_b, blob_a)])
    _store(note, assemble(swapped, ring.keys))
    for reader in (ada, bo):
        with pytest.raises(DecryptionFailed):
            read(reader, note)
    # Bo's stanza taken from another note (Ada's own stanza is still hers and still opens).
    borrowed = dataclasses.replace(
        layout, stanzas=[split_envelope(other.envelope).stanzas[0], (role_b, blob_b)]
    )
    _store(note, assemble(borrowed, ring.keys))
    with pytest.raises(DecryptionFailed):
        read(bo, note)


def test_moving_a_note_to_another_pair_is_rejected(folks):
    ada, bo, cy, dee = (folks[n] for n in ("ada", "bo", "cy", "dee"))
    note = write(ada, CANARY_TEXT)
    note_id = note.id
    # Into Cy and Dee's pair, addressed to Dee.
    note.pair_id, note.sender_id, note.recipient_id = cy.user.pair_id, cy.id, dee.id
    db.session.commit()
    for reader in (cy, dee):
        with pytest.raises(DecryptionFailed):
            read(reader, note_id)
    # Into a later pair of the same two people.
    note.pair_id, note.sender_id, note.recipient_id = ada.user.pair_id, ada.id, bo.id
    db.session.commit()
    pairing.unpair(user=ada.user, now=now())
    db.session.refresh(bo.user)
    pair(ada, bo)
    note.pair_id = ada.user.pair_id
    db.session.commit()
    with pytest.raises(DecryptionFailed):
        read(bo, note_id)


def _forged_note(
    pair_id: int, sender: Person, recipient: Person, envelope: bytes, header=None
) -> Note:
    header = header or crypto.envelope_header(envelope)
    note = Note(
        id=header.note_id,
        pair_id=pair_id,
        sender_id=sender.id,
        recipient_id=recipient.id,
        created_at=_utc(header.created_at),
        sealed=header.sealed,
        envelope=envelope,
    )
    db.session.add(note)
    db.session.commit()
    return note


def _utc(seconds: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


def _envelope_as(sender: Person, recipient: Person, signer: crypto.UserKeys) -> bytes:
    """An envelope that claims `sender` wrote it, sealed by whoever holds `signer`."""
    created = int(now().timestamp())
    recipient_public = keyring.public_keys(recipient.user)
    header = crypto.NoteHeader(
        note_id="f" * 32,
        pair_id=sender.user.pair_id,
        sender_id=sender.id,
        recipient_id=recipient.id,
        sender_key_id=signer.public().key_id,
        recipient_key_id=recipient_public.key_id,
        created_at=created,
        sealed=False,
    )
    return crypto.seal_envelope(
        header=header,
        body=b'{"b":"forged words","t":null}',
        sender_keys=signer,
        recipient_public=recipient_public,
        sender_public=signer.public(),
    )


def test_inserted_unsigned_or_wrongly_signed_rows_are_rejected(folks):
    ada, bo, cy = folks["ada"], folks["bo"], folks["cy"]
    write(ada)  # Bo's keyring pins Ada's keys on first use
    read(bo, notes.inbox(user=bo.user)[0].id)
    forger = crypto.generate_user_keys()
    cy_keys = keyring.unlock(user=cy.user, user_key=cy.key).keys
    ada_keys = keyring.unlock(user=ada.user, user_key=ada.key).keys
    honest = _envelope_as(ada, bo, ada_keys)
    assert read(bo, _forged_note(ada.user.pair_id, ada, bo, honest)).text == "forged words"
    db.session.delete(db.session.get(Note, "f" * 32))
    db.session.commit()
    variants = {
        "sealed by a stranger's own keys": _envelope_as(ada, bo, forger),
        "sealed by Cy, another user": _envelope_as(ada, bo, cy_keys),
        "Ada's key id, Cy's signature": honest[:-64]
        + crypto._sign_envelope(cy_keys.sign_private, honest[:-64]),
        "no signature at all": honest[:-64] + bytes(64),
        "signature cut off": honest[:-64],
    }
    header = crypto.envelope_header(honest)
    for name, envelope in variants.items():
        note = _forged_note(ada.user.pair_id, ada, bo, envelope, header)
        with pytest.raises(DecryptionFailed):
            read(bo, note)
            pytest.fail(f"opened: {name}")
        db.session.delete(note)
        db.session.commit()


def test_a_key_swapped_in_the_database_to_forge_a_note_shows_a_warning_not_the_note(folks):
    ada, bo = folks["ada"], folks["bo"]
    write(ada)
    read(bo, notes.inbox(user=bo.user)[0].id)  # pinned
    forger = crypto.generate_user_keys()
    public = forger.public()
    ada.user.hpke_public, ada.user.sign_public, ada.user.key_id = (
        public.hpke_public,
        public.sign_public,
        public.key_id,
    )
    note = _forged_note(ada.user.pair_id, ada, bo, _envelope_as(ada, bo, forger))
    with pytest.raises(KeyChanged):
        read(bo, note)


# Page tests build their data inside an app context of their own and then leave it: requests
# made while a test holds an app context would share its `g` (and so one login) between clients.


@pytest.fixture
def pages(app):
    """Two pairs built through the services, and a way to sign each person in."""

    def build():  # call inside the test's own app context
        people = {name: make_person(app, name) for name in ("ada", "bo", "cy", "dee")}
        pair(people["ada"], people["bo"])
        pair(people["cy"], people["dee"])
        return people

    def signed_in(name: str):
        client = app.test_client()
        post_form(client, "/login", {"email": f"{name}@example.com", "password": PASSWORD})
        return client

    return build, signed_in


def test_forged_and_damaged_notes_render_nothing_of_themselves(app, pages):
    build, signed_in = pages
    with app.app_context():
        people = build()
        ada, bo = people["ada"], people["bo"]
        note = write(ada, CANARY_TEXT)
        damaged = bytearray(note.envelope)
        damaged[-100] ^= 0x01
        _store(note, bytes(damaged))
        forged = _envelope_as(ada, bo, crypto.generate_user_keys())
        ids = [note.id, _forged_note(ada.user.pair_id, ada, bo, forged).id]
    client = signed_in("bo")
    for note_id in ids:
        response = client.get(f"/notes/{note_id}")
        page = response.get_data(as_text=True)
        assert response.status_code == 422, note_id
        assert "could not be opened" in page
        assert CANARY_TEXT not in page and "forged words" not in page
        assert 'class="note-body"' not in page and "/answer" not in page


# --- who can reach a note ---------------------------------------------------------------


NOTE_URLS = [
    ("GET", "/notes/{id}"),
    ("GET", "/notes/{id}/delete"),
    ("POST", "/notes/{id}/delete"),
    ("POST", "/notes/{id}/answer"),
    ("GET", "/notes/past/{id}"),
]


def _request(client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    return post_form(client, url, {"choice": "yes"}, token_from="/settings/")


def test_every_note_url_refuses_people_outside_the_note(app, pages):
    build, signed_in = pages
    with app.app_context():
        people = build()
        note = write(people["ada"], CANARY_TEXT).id
        sealed = write(people["bo"], CANARY_TEXT, sealed=True).id
    cases = [
        ("cy", note, NOTE_URLS),  # another pair entirely
        ("dee", sealed, NOTE_URLS),
        ("bo", note, NOTE_URLS[1:3]),  # the reader may not delete it
        ("ada", note, NOTE_URLS[3:]),  # the writer may not answer it
        ("ada", note, NOTE_URLS[4:]),  # not a past note while the pair lasts
    ]
    for name, note_id, urls in cases:
        client = signed_in(name)
        for method, url in urls:
            response = _request(client, method, url.format(id=note_id))
            assert response.status_code == 404, (name, method, url)
            assert CANARY_TEXT not in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Note, note).answer_envelope is None
        assert db.session.get(Note, sealed) is not None
    # The writer of a sealed note sees that it is sealed, never its words.
    page = signed_in("bo").get(f"/notes/{sealed}").get_data(as_text=True)
    assert "This note is sealed" in page and CANARY_TEXT not in page


def test_past_note_urls_refuse_everyone_but_the_two_who_shared_the_pair(app, pages):
    build, signed_in = pages
    with app.app_context():
        ada = build()["ada"]
        note = write(ada, CANARY_TEXT).id
        pairing.unpair(user=ada.user, now=now())
    for name in ("cy", "dee"):
        assert signed_in(name).get(f"/notes/past/{note}").status_code == 404
    assert CANARY_TEXT in signed_in("bo").get(f"/notes/past/{note}").get_data(as_text=True)
    assert CANARY_TEXT in signed_in("ada").get(f"/notes/past/{note}").get_data(as_text=True)


def test_envelope_layout_helper_matches_the_stored_format(folks):
    # The tamper tests lean on tests/test_crypto.py's reading of the format; check it here too.
    note = write(folks["ada"], CANARY_TEXT)
    layout = split_envelope(note.envelope)
    assert struct.unpack(">I", note.envelope[5:9])[0] == len(layout.header_bytes)
    assert [role for role, _ in layout.stanzas] == [1, 2]


# --- the practices around the notes: table, places, agreements --------------------------

CANARY_RITUAL = "canary-ritual-3d9a71c4 I miss our tea on the balcony"
CANARY_PLACE = "canary-place-8e21b6f0"
CANARY_TURN = "canary-turn-c0a4e95d I see the sea, a wave breaks on the shore"
CANARY_AGREEMENT = "canary-agreement-61f2d8ab phones in the drawer after nine"


def test_practice_texts_are_nowhere_an_attacker_looks(app, caplog, capfd):
    recorder = CookieJarRecorder(app.wsgi_app)
    app.wsgi_app = recorder
    ada, bo = app.test_client(), app.test_client()
    with everything_logged(caplog):
        _register(ada, "ada@example.com", "Ada")
        _register(bo, "bo@example.com", "Bo")
        invite = post_form(ada, "/pair/invite", token_from="/pair/").get_data(as_text=True)
        join = re.search(r'value="http://wishnotes\.test(/pair/join/[^"]+)"', invite).group(1)
        assert post_form(bo, join).status_code == 302
        assert post_form(bo, "/together/table/", {"text": CANARY_RITUAL}).status_code == 302
        started = post_form(
            ada, "/together/place/start", {"name": CANARY_PLACE}, token_from="/together/place/"
        )
        assert started.status_code == 302
        with app.app_context():
            place_id = db.session.scalar(select(Place.id))
        turn = post_form(
            ada,
            f"/together/place/{place_id}/turn",
            {"text": CANARY_TURN},
            token_from="/together/place/",
        )
        assert turn.status_code == 302
        proposed = post_form(
            bo,
            "/together/agreements/new",
            {"shipped": "own", "text": CANARY_AGREEMENT, "starts_on": str(now().date())},
        )
        assert proposed.status_code == 302
        # The one place each belongs: the partner's screen (and the writer's).
        assert CANARY_RITUAL in ada.get("/together/table/").get_data(as_text=True)
        place_page = bo.get("/together/place/").get_data(as_text=True)
        assert CANARY_PLACE in place_page and CANARY_TURN in place_page
        assert CANARY_AGREEMENT in ada.get("/together/agreements/").get_data(as_text=True)
        # The weekly email may say something is waiting, and nothing more.
        with app.app_context():
            db.session.execute(sa.update(User).values(weekly_weekday=0, weekly_hour=9))
            db.session.commit()
            monday = now().replace(year=2030, month=1, day=7, hour=9, minute=30)
            schedule.queue_due(now=monday, batch_size=50, catchup=timedelta(hours=2))
            captured = CapturedMail()
            outbox.deliver_due(now=monday + timedelta(minutes=1), transport=captured)
    app.wsgi_app = recorder.wsgi_app

    secrets = {
        "ritual": CANARY_RITUAL.encode(),
        "place name": CANARY_PLACE.encode(),
        "turn": CANARY_TURN.encode(),
        "agreement": CANARY_AGREEMENT.encode(),
    }
    stored = database_files(app) + database_dump(app)
    assert b"canary" not in stored
    assert_absent(stored, secrets, "the database")
    logs = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    logs += "".join(capfd.readouterr())
    assert "INSERT INTO ritual_items" in logs and "INSERT INTO place_turns" in logs
    assert_absent(logs.encode(), secrets, "the log")
    emails = b"".join(message.as_bytes() for message in captured.messages)
    assert captured.messages
    assert_absent(emails, secrets, "the emails")
    cookies = "\n".join(recorder.headers).encode()
    assert_absent(cookies, secrets, "the cookies")
    for client in (ada, bo):
        jar = "\n".join(f"{c.key}={c.value}" for c in client._cookies.values()).encode()
        assert_absent(jar, secrets, "a browser's cookie jar")


def _practice_items(people):
    """One of everything, written through the services: item ids by what they are."""
    ada, bo = people["ada"], people["bo"]
    item = rituals.add_item(user=ada.user, user_key=ada.key, text=CANARY_RITUAL, now=now())
    place = places.start_place(user=bo.user, user_key=bo.key, name=CANARY_PLACE, now=now())
    places.add_turn(user=bo.user, user_key=bo.key, place_id=place.id, text=CANARY_TURN, now=now())
    agreement = agreements.propose(
        user=ada.user, user_key=ada.key, text=CANARY_AGREEMENT, starts_on=now().date(), now=now()
    )
    return {"item": item.id, "place": place.id, "agreement": agreement.id}


PRACTICE_URLS = [
    ("POST", "/together/table/{item}/welcome"),
    ("POST", "/together/table/{item}/plan"),
    ("POST", "/together/table/{item}/done"),
    ("POST", "/together/table/{item}/archive"),
    ("GET", "/together/place/{place}"),
    ("POST", "/together/place/{place}/turn"),
    ("POST", "/together/place/{place}/end"),
    ("POST", "/together/agreements/{agreement}/accept"),
    ("POST", "/together/agreements/{agreement}/end"),
]


def test_every_practice_url_refuses_a_third_person(app, pages):
    build, signed_in = pages
    with app.app_context():
        people = build()
        ids = _practice_items(people)
    cy = signed_in("cy")
    for method, url in PRACTICE_URLS:
        address = url.format(**ids)
        if method == "GET":
            response = cy.get(address)
        else:
            response = post_form(
                cy, address, {"text": "x", "day": str(now().date())}, token_from="/together/table/"
            )
        assert response.status_code == 404, (method, url)
        assert "canary" not in response.get_data(as_text=True)
    for url in ("/together/table/", "/together/place/", "/together/agreements/"):
        assert "canary" not in cy.get(url).get_data(as_text=True)
    with app.app_context():
        item = db.session.get(RitualItem, ids["item"])
        assert item.welcomed_at is None and item.archived_at is None
        assert db.session.get(Place, ids["place"]).ended_at is None
        agreement = db.session.get(Agreement, ids["agreement"])
        assert agreement.accepted_at is None and agreement.ended_at is None


def test_a_damaged_or_moved_practice_text_is_refused_and_shows_nothing(folks):
    ada, bo, cy = folks["ada"], folks["bo"], folks["cy"]
    ids = _practice_items(folks)
    second = places.add_turn(
        user=ada.user, user_key=ada.key, place_id=ids["place"], text="The foam", now=now()
    )
    item = db.session.get(RitualItem, ids["item"])
    agreement = db.session.get(Agreement, ids["agreement"])
    first_turn = db.session.scalar(select(PlaceTurn).where(PlaceTurn.seq == 1))

    def table_text():
        return rituals.table(user=bo.user, user_key=bo.key, now=now())[0].text

    def agreement_text():
        return agreements.listing(user=bo.user, user_key=bo.key, now=now())[0].text

    def turn_texts():
        opened = places.current(user=ada.user, user_key=ada.key, now=now())
        return [turn.text for turn in opened.turns]

    assert table_text() == CANARY_RITUAL and agreement_text() == CANARY_AGREEMENT
    # One flipped byte in the ciphertext, the header or the signature.
    for row, reopen in ((item, table_text), (agreement, agreement_text)):
        original = row.envelope
        for index in (20, len(original) // 2, len(original) - 1):
            damaged = bytearray(original)
            damaged[index] ^= 0x01
            row.envelope = bytes(damaged)
            db.session.commit()
            assert reopen() is None
        row.envelope = original
        db.session.commit()
    # An envelope of one kind copied into another row, or turns swapped between positions.
    item.envelope = agreement.envelope
    db.session.commit()
    assert table_text() is None
    first_turn.envelope, second.envelope = second.envelope, first_turn.envelope
    db.session.commit()
    assert turn_texts() == [None, None]
    first_turn.envelope, second.envelope = second.envelope, first_turn.envelope
    db.session.commit()
    assert turn_texts() == [CANARY_TURN, "The foam"]
    # Moved to another pair: the other pair cannot open it, and the header no longer agrees.
    agreement.pair_id = cy.user.pair_id
    db.session.commit()
    assert agreements.listing(user=bo.user, user_key=bo.key, now=now()) == []
    [moved] = agreements.listing(user=cy.user, user_key=cy.key, now=now())
    assert moved.text is None and not moved.can_accept


def test_unpairing_can_delete_what_each_partner_wrote_in_the_practices(folks):
    ada, bo = folks["ada"], folks["bo"]
    ids = _practice_items(folks)
    places.add_turn(user=ada.user, user_key=ada.key, place_id=ids["place"], text="Foam", now=now())
    pairing.unpair(user=ada.user, now=now(), delete_my_practices=True)
    assert db.session.get(RitualItem, ids["item"]) is None  # Ada's
    assert db.session.get(Agreement, ids["agreement"]) is None  # Ada's
    writers = {turn.writer_id for turn in db.session.scalars(select(PlaceTurn))}
    assert writers == {bo.id}  # Bo's turn stays his to keep
    assert db.session.get(Place, ids["place"]).name_envelope is not None  # Bo named it


def test_deleting_an_account_removes_what_it_wrote_in_the_practices(app, folks):
    ada = folks["ada"]
    _practice_items(folks)
    accounts.delete_account(
        user=ada.user, password=PASSWORD, kdf=app.extensions["wishnotes.kdf"], now=now()
    )
    assert db.session.scalars(select(RitualItem)).all() == []
    assert db.session.scalars(select(Agreement)).all() == []
    stored = database_dump(app)
    assert CANARY_RITUAL.encode() not in stored
