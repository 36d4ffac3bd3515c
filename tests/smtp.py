"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, keeping every message it accepts.

`smtp_server` starts one per test on a free port. It can answer any step with any reply:
`handler.replies[stage] = "554 …"` for a stage of STAGES (the greeting, EHLO, STARTTLS, AUTH,
MAIL, RCPT, DATA; `reject_rcpt` and `reject_data` are the older names of the last two), stall
before replying (`handler.stalls[stage] = seconds`; at DATA the message is stored first, like a
relay whose reply comes late), be stopped and started again on the same port (the server is
"down" in between), and call `on_accept(message)` after taking a message. It offers AUTH
without TLS and takes any credentials unless told otherwise.
"""

from __future__ import annotations

import asyncio
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


STAGES = ("greeting", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA")


class Handler:
    """Collects accepted messages; replies as told."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.replies: dict[str, str] = {}
        self.stalls: dict[str, float] = {}
        self.sessions = 0  # connections greeted (or refused at the greeting)
        self.on_accept: Callable[[EmailMessage], None] | None = None

    @property
    def reject_rcpt(self) -> str | None:
        return self.replies.get("RCPT")

    @reject_rcpt.setter
    def reject_rcpt(self, reply: str | None) -> None:
        self._set("RCPT", reply)

    @property
    def reject_data(self) -> str | None:
        return self.replies.get("DATA")

    @reject_data.setter
    def reject_data(self, reply: str | None) -> None:
        self._set("DATA", reply)

    def _set(self, stage: str, reply: str | None) -> None:
        if reply is None:
            self.replies.pop(stage, None)
        else:
            self.replies[stage] = reply

    async def stall(self, stage: str) -> None:
        seconds = self.stalls.get(stage)
        if seconds:
            await asyncio.sleep(seconds)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not any("STARTTLS" in line for line in responses) and "STARTTLS" in self.replies:
            responses.insert(-1, "250-STARTTLS")  # offered, so that it can be refused
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await self.stall("MAIL")
        if "MAIL" in self.replies:
            return self.replies["MAIL"]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self.stall("RCPT")
        if "RCPT" in self.replies:
            return self.replies["RCPT"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if "DATA" in self.replies:
            return self.replies["DATA"]
        message = message_from_bytes(envelope.content, policy=default)
        with self.lock:
            self.messages.append(message)
        if self.on_accept is not None:
            self.on_accept(message)
        await self.stall("DATA")  # stored, but the reply comes late
        return "250 Message accepted for delivery"


class ScriptedSMTP(SMTP):
    """aiosmtpd's SMTP with the greeting, EHLO, STARTTLS and AUTH answered as the handler says."""

    def __init__(self, handler: Handler, **kwargs) -> None:
        super().__init__(handler, auth_require_tls=False, **kwargs)
        self.script = handler
        self._greeted = False

    async def push(self, status):
        if not self._greeted:  # the first line of a session is the greeting
            self._greeted = True
            self.script.sessions += 1
            await self.script.stall("greeting")
            status = self.script.replies.get("greeting", status)
        await super().push(status)

    async def smtp_EHLO(self, hostname: str):
        await self.script.stall("EHLO")
        if "EHLO" in self.script.replies:
            await self.push(self.script.replies["EHLO"])
            return
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str):
        if "EHLO" in self.script.replies:
            await self.push(self.script.replies["EHLO"])
            return
        await super().smtp_HELO(hostname)

    async def smtp_STARTTLS(self, arg: str):
        await self.script.stall("STARTTLS")
        if "STARTTLS" in self.script.replies:
            await self.push(self.script.replies["STARTTLS"])
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        await self.script.stall("AUTH")
        await self.push(self.script.replies.get("AUTH", "235 2.7.0 Authentication successful"))


class _ScriptedController(Controller):
    def factory(self):
        return ScriptedSMTP(self.handler)


class _TlsController(Controller):
    """A controller whose SMTP sessions offer STARTTLS with the given context."""

    def __init__(self, *args, starttls_context: ssl.SSLContext, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.starttls_context = starttls_context

    def factory(self):
        return ScriptedSMTP(self.handler, tls_context=self.starttls_context, require_starttls=True)


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
            self.controller = _ScriptedController(
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
