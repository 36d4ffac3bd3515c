"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, keeping every message it accepts.

`smtp_server` starts one per test on a free port. It can answer RCPT or DATA with any reply
(`reject_rcpt = "550 …"`, `reject_data = "451 …"`), be stopped and started again on the same
port (the server is "down" in between), and call `on_accept(message)` after taking a message.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Handler:
    """Collects accepted messages; replies as told."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.reject_rcpt: str | None = None
        self.reject_data: str | None = None
        self.on_accept: Callable[[EmailMessage], None] | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_rcpt:
            return self.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reject_data:
            return self.reject_data
        message = message_from_bytes(envelope.content, policy=default)
        with self.lock:
            self.messages.append(message)
        if self.on_accept is not None:
            self.on_accept(message)
        return "250 Message accepted for delivery"


class _TlsController(Controller):
    """A controller whose SMTP sessions offer STARTTLS with the given context."""

    def __init__(self, *args, starttls_context: ssl.SSLContext, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.starttls_context = starttls_context

    def factory(self):
        return SMTP(self.handler, tls_context=self.starttls_context, require_starttls=True)


class SmtpServer:
    """One aiosmtpd server on 127.0.0.1 that can go down and come back on the same port."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        starttls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.port = free_port()
        self.handler = Handler()
        self.tls_context = tls_context
        self.starttls_context = starttls_context
        self.controller: Controller | None = None
        self.start()

    def start(self) -> None:
        if self.starttls_context is not None:
            self.controller = _TlsController(
                self.handler,
                hostname="127.0.0.1",
                port=self.port,
                starttls_context=self.starttls_context,
            )
        else:
            self.controller = Controller(
                self.handler,
                hostname="127.0.0.1",
                port=self.port,
                ssl_context=self.tls_context,
                server_hostname="localhost",
            )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def message_ids(self) -> list[str]:
        return [message["Message-ID"] for message in self.messages]


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    yield server
    server.stop()
