"""Email: render the templates in templates/email/, build the message, send it over SMTP.

Nothing here knows who is due or what was sent; wishnotes.outbox decides that. No email ever
carries note text or anything a partner wrote: the templates get only the recipient's own name,
prompt texts from the library and links.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import secrets
import smtplib
import ssl
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import current_app
from markupsafe import escape

from wishnotes import i18n
from wishnotes.errors import (
    ConnectionLost,
    DeliveryDeferred,
    DeliveryError,
    DeliveryRejected,
    MailNotConfigured,
    ServerUnavailable,
    SessionRefused,
)
from wishnotes.i18n import _l

SECURITY_MODES = ("none", "starttls", "tls")
# Bodies as quoted-printable UTF-8: readable in the raw message, safe for any line length.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
# Headers such as List-Unsubscribe stay on one line (RFC 5322 allows 998 characters).
_HEADERS_UNFOLDED = compat32.clone(max_line_length=998)

# Subjects: discreet ones name nothing about what the app is for, nor anyone's name.
# They read like any calm app's mail: what happened, in plain words, no mystery and no urgency.
# Worded when an email is rendered, in the recipient's language (see i18n.in_language).
SUBJECTS: dict[str, tuple[str, str]] = {
    # kind: (discreet, plain); the plain one may use %(theme)s / %(prompt)s.
    "weekly": (_l("Your weekly summary"), _l("This week's theme: %(theme)s")),
    "weekly_idle": (_l("Your weekly summary"), _l("A new week of notes, whenever you like")),
    "daily": (_l("Your daily summary"), _l("Today's prompt: %(prompt)s")),
    "note_notice": (_l("You have a new note"), _l("Your partner wrote you a note")),
    "password_reset": (_l("Reset your password"), _l("Reset your password")),
}
# The button colour of every email: the app's own accent, so mail and app look alike.
BUTTON_COLOUR = "#7b3f61"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def base_url(config: Mapping[str, Any] | None = None) -> str:
    """Return BASE_URL without a trailing slash; MailNotConfigured when unset or unsafe."""
    config = current_app.config if config is None else config
    return _checked_base_url(config.get("BASE_URL") or "", config.get("ENV"))


@functools.lru_cache(maxsize=8)
def _checked_base_url(url: str, env: str | None) -> str:
    # Cached: a scheduler pass builds several links for each of many thousand emails.
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise MailNotConfigured(
            "WISHNOTES_BASE_URL must be set to the public address, e.g. "
            "https://notes.example.org, for links in emails."
        )
    if env == "production" and parts.scheme != "https":
        raise MailNotConfigured("WISHNOTES_BASE_URL must be an https address in production.")
    return url


def link(path: str) -> str:
    """Return the absolute address of a path on this site, for an email."""
    return base_url() + path


def render(template: str, *, subject: str, **context: Any) -> Rendered:
    """Render email/<template>.txt and .html with the same context, in the language in effect.

    An email to someone is rendered inside `i18n.in_language(their language)`, subject too.
    """
    env = current_app.jinja_env
    context = {
        "base_url": base_url(),
        "subject": subject,
        "button": BUTTON_COLOUR,
        "language": i18n.current(),
        **context,
    }
    return Rendered(
        subject=subject,
        text=env.get_template(f"email/{template}.txt").render(context),
        html=env.get_template(f"email/{template}.html").render(context),
    )


@dataclass(frozen=True)
class Subject:
    """A subject not yet put in words: its kind and values (see SUBJECTS)."""

    kind: str
    discreet: bool
    values: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        """Return the subject in the language in effect."""
        return subject_for(self.kind, discreet=self.discreet, **dict(self.values))


class MailMerge:
    """Render each distinct email once, with slots for what differs per recipient.

    A scheduler pass sends the same weekly email, up to the greeting and the unsubscribe link,
    to thousands of people; rendering the templates once per variant instead of once per person
    makes the pass several times faster, and storing the variant once instead of in every
    outbox row makes it several times faster again. `fill` puts in the per-recipient values at
    delivery (HTML-escaped in the HTML part), so templates must print them as they are, with no
    filter. The other context values must be hashable: they name the variant, and so does the
    recipient's language, so each language gets its own (the locale is switched only to render
    a new variant, never once per recipient).
    """

    def __init__(self) -> None:
        self._variants: dict[tuple, Rendered] = {}

    def variant(
        self,
        template: str,
        *,
        language: str,
        subject: Subject,
        slots: Iterable[str],
        **context: Any,
    ) -> Rendered:
        """Return the email in `language`, rendered with a slot in place of each name in `slots`."""
        names = tuple(sorted(slots))
        key = (template, language, subject, names, tuple(sorted(context.items())))
        found = self._variants.get(key)
        if found is None:
            holes = {name: _slot(name) for name in names}
            with i18n.in_language(language):
                found = render(template, subject=subject.text(), **context, **holes)
            self._variants[key] = found
        return found


def fill(variant: Rendered, fields: Mapping[str, str]) -> Rendered:
    """Put one recipient's values into the slots of a variant."""
    text, html = variant.text, variant.html
    for name, value in fields.items():
        text = text.replace(_slot(name), value)
        html = html.replace(_slot(name), str(escape(value)))
    return Rendered(subject=variant.subject, text=text, html=html)


def _slot(name: str) -> str:
    # A control character (not NUL: PostgreSQL text cannot hold it) that names and links never
    # contain (both are checked) and template text does not either.
    return f"\x1f{name}\x1f"


def subject_for(kind: str, *, discreet: bool, **values: str) -> str:
    """Return the subject of a kind of email, discreet or plain, in the language in effect."""
    discreet_subject, plain = SUBJECTS[kind]
    return str(discreet_subject) if discreet else str(plain) % values


def message_domain(config: Mapping[str, Any] | None = None) -> str:
    """Return the domain of the Message-IDs: the host of BASE_URL."""
    return urlsplit(base_url(config)).hostname or "localhost"


def new_message_id(domain: str | None = None) -> str:
    """Return a fresh Message-ID on the site's domain; stored, so a retry keeps it."""
    return make_msgid(domain=domain or message_domain())


def build_message(
    *,
    mail_from: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    unsubscribe_url: str | None,
    date: datetime,
) -> Message:
    """Return a text + HTML message with Date, Message-ID and, for bulk kinds, RFC 8058 headers.

    Built with the classic MIME classes: the same message as EmailMessage gives, about twenty
    times faster to build, which counts when thousands go out in one pass.
    """
    # "=_" never occurs in quoted-printable text, so the boundary needs no search of the body.
    boundary = f"=_{secrets.token_hex(12)}"
    message = MIMEMultipart("alternative", boundary=boundary, policy=_HEADERS_UNFOLDED)
    name, address = parseaddr(mail_from)
    message["From"] = formataddr((name, address), charset="utf-8")
    message["To"] = to
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.attach(MIMEText(text, "plain", _UTF8_QP))
    message.attach(MIMEText(html, "html", _UTF8_QP))
    return message


class Connection(Protocol):
    def send(self, message: Message) -> None: ...


class Transport(Protocol):
    def connect(self): ...  # a context manager yielding a Connection


@dataclass(frozen=True, repr=False)
class SmtpTransport:
    """SMTP with no encryption, STARTTLS, or implicit TLS; the password never appears in repr.

    Two timeouts: `timeout` for connecting and for every command, and the longer `data_timeout`
    for the reply to the end of a message. A relay that stores a message and answers after we
    stopped waiting gets it a second time on the retry, so the wait for that one reply is long
    (RFC 5321 section 4.5.3.2 suggests 10 minutes) while a dead relay is still noticed quickly.
    """

    host: str
    port: int
    security: str = "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0
    data_timeout: float = 300.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpTransport:
        security = (config.get("SMTP_SECURITY") or "none").lower()
        if security not in SECURITY_MODES:
            raise MailNotConfigured(
                f"WISHNOTES_SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}."
            )
        return cls(
            host=config["SMTP_HOST"],
            port=int(config["SMTP_PORT"]),
            security=security,
            username=config.get("SMTP_USERNAME") or None,
            password=config.get("SMTP_PASSWORD") or None,
            timeout=float(config["SMTP_TIMEOUT"]),
            data_timeout=float(config["SMTP_DATA_TIMEOUT"]),
        )

    def __repr__(self) -> str:
        return f"SmtpTransport({self.host}:{self.port}, {self.security})"

    @contextmanager
    def connect(self) -> Iterator[SmtpConnection]:
        """Open one SMTP session for a batch of messages; SessionRefused if the relay won't.

        Every step before the first message (connect and greeting, EHLO, STARTTLS, AUTH) runs
        here, so any refusal or failure of them is a refusal of the session, never of a message.
        """
        stage = "connect"
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            stage = "EHLO"
            smtp.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                stage = "STARTTLS"
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                stage = "AUTH"
                smtp.login(self.username, self.password or "")
        except Exception as exc:
            raise _session_error(exc, stage) from None
        connection = SmtpConnection(smtp, data_timeout=self.data_timeout)
        try:
            yield connection
        finally:
            connection.close()


class SmtpConnection:
    """One open SMTP session; `send` walks MAIL FROM, RCPT TO and DATA one by one.

    Each step is its own call so that a reply is judged by what it answers: MAIL FROM carries
    only the site's sender address, nothing of the message, so its refusal is the session's;
    RCPT TO and DATA answer for this one message.
    """

    def __init__(self, smtp: smtplib.SMTP, *, data_timeout: float) -> None:
        self.smtp = smtp
        self.data_timeout = data_timeout

    def send(self, message: Message) -> None:
        """Send one message; raise SessionRefused, DeliveryDeferred or DeliveryRejected."""
        sender = parseaddr(str(message["From"]))[1]
        recipient = str(message["To"])
        international = not (sender + recipient).isascii()
        options: list[str] = []
        if international:
            if not self.smtp.has_extn("smtputf8"):
                raise DeliveryRejected("the relay takes no address with non-ASCII letters")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        body = _flatten(message, utf8=international)
        try:
            code, reply = self.smtp.mail(sender, options)
        except Exception as exc:
            raise _session_error(exc, "MAIL FROM") from None
        if code != 250:
            self._reset()
            raise SessionRefused(f"MAIL FROM: {_reply(code, reply)}")
        try:
            code, reply = self.smtp.rcpt(recipient)
            if code not in (250, 251):
                self._reset()
                raise _by_code(code, reply)
            code, reply = self._data(body)
        except smtplib.SMTPResponseException as exc:  # DATA itself refused
            self._reset()
            raise _by_code(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _lost(exc) from None
        if code != 250:
            self._reset()
            raise _by_code(code, reply)

    def _data(self, body: bytes) -> tuple[int, bytes]:
        # The long wait covers the reply to the end of the message (and the short DATA step).
        self.smtp.sock.settimeout(self.data_timeout)
        try:
            return self.smtp.data(body)
        finally:
            if self.smtp.sock is not None:  # smtplib drops it when the connection is lost
                self.smtp.sock.settimeout(self.smtp.timeout)

    def _reset(self) -> None:
        # If this fails, the next MAIL FROM finds out, as a refusal of the session.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.smtp.rset()

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()


def _flatten(message: Message, *, utf8: bool) -> bytes:
    """Return the message as bytes with CRLF line ends, as smtplib.send_message would."""
    # Our messages are built on compat32, which has no utf8 switch (smtplib's send_message fails
    # on it): the envelope carries the UTF-8 address, the To header an RFC 2047 encoded word.
    policy = message.policy.clone(cte_type="8bit") if utf8 else message.policy
    with io.BytesIO() as buffer:
        BytesGenerator(buffer, policy=policy).flatten(message, linesep="\r\n")
        return buffer.getvalue()


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(str(text).split())}"[:300]


def _by_code(code: int, text: bytes | str) -> DeliveryError:
    """Judge a reply to RCPT TO or DATA: it answers for this one message."""
    reason = _reply(code, text)
    if 400 <= code < 500:
        return DeliveryDeferred(reason)
    if code >= 500:
        return DeliveryRejected(reason)
    return DeliveryDeferred(f"unexpected SMTP reply {reason}")


def _timed_out(exc: BaseException) -> bool:
    # smtplib turns a timeout while reading a reply into SMTPServerDisconnected.
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__context__ or exc.__cause__
    return False


def _lost(exc: BaseException) -> ConnectionLost:
    if _timed_out(exc):
        return ConnectionLost("no reply in time while sending; it may have arrived")
    return ConnectionLost("the connection dropped while sending; it may have arrived")


def _session_error(exc: Exception, stage: str) -> SessionRefused:
    """Turn a failure before any message was handed over into a refusal of the session."""
    if isinstance(exc, smtplib.SMTPResponseException):  # greeting, EHLO, STARTTLS, AUTH
        stage = "greeting" if stage == "connect" else stage
        return SessionRefused(f"{stage}: {_reply(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SessionRefused(f"{stage}: the relay does not offer it")
    if _timed_out(exc):
        return ServerUnavailable(f"{stage}: the SMTP server timed out")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return ServerUnavailable(f"{stage}: the SMTP server closed the connection")
    if isinstance(exc, ssl.SSLError):
        return ServerUnavailable(f"{stage}: TLS failed: {exc.reason or type(exc).__name__}")
    if isinstance(exc, OSError):
        why = exc.strerror or type(exc).__name__
        return ServerUnavailable(f"{stage}: cannot reach the SMTP server: {why}")
    if isinstance(exc, smtplib.SMTPException):
        return ServerUnavailable(f"{stage}: SMTP error: {type(exc).__name__}")
    raise exc


def check_timeouts(config: Mapping[str, Any]) -> None:
    """Refuse a lease that could run out while a worker still waits for the relay.

    A claimed email is retried by another worker once EMAIL_LEASE has passed; if that could
    happen while the first worker still waits for the reply to DATA, a slow relay would get
    every message twice. The connection and the commands before DATA take a few SMTP_TIMEOUTs.
    """
    needed = float(config["SMTP_DATA_TIMEOUT"]) + 10 * float(config["SMTP_TIMEOUT"])
    if config["EMAIL_LEASE"].total_seconds() <= needed:
        raise MailNotConfigured(
            "WISHNOTES_SMTP_DATA_TIMEOUT plus ten WISHNOTES_SMTP_TIMEOUT must stay below the "
            f"email lease ({config['EMAIL_LEASE'].total_seconds():g} s)."
        )


@dataclass(frozen=True)
class FolderTransport:
    """Development: each email becomes an .eml file in a folder (any mail app opens one).

    So that the app's emails can be read on the first run, with no mail server. Never in
    production: the files hold sign-in links.
    """

    folder: Path

    @contextmanager
    def connect(self) -> Iterator[FolderTransport]:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        yield self

    def send(self, message: Message) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{stamp}-{secrets.token_hex(4)}.eml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(message.as_bytes())


def mail_folder(config: Mapping[str, Any], *, instance_path: Path) -> Path | None:
    """Return the folder emails are written to (MAIL_FOLDER, relative to the instance)."""
    folder = config.get("MAIL_FOLDER")
    if not folder:
        return None
    if config.get("ENV") == "production":
        raise MailNotConfigured("WISHNOTES_MAIL_FOLDER is for development; use SMTP in production.")
    return (instance_path / folder).resolve()


def transport(config: Mapping[str, Any] | None = None) -> Transport:
    """Return the transport the config names: MAIL_TRANSPORT (tests), a folder, or SMTP."""
    config = current_app.config if config is None else config
    factory = config.get("MAIL_TRANSPORT")
    if factory is not None:
        return factory(config)
    if config.get("MAIL_FOLDER"):
        return FolderTransport(Path(config["MAIL_FOLDER"]))
    return SmtpTransport.from_config(config)
