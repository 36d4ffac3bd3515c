"""`wishnotes serve` behind a reverse proxy: forwarded headers count when PROXY_HOPS says so."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from .conftest import CSRF_RE, PEPPER, SECRET_KEY


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def proxied_serve(tmp_path) -> Iterator[int]:
    """A real `wishnotes serve` process told that one proxy stands in front of it."""
    port = _free_port()
    env = {
        **os.environ,
        "WISHNOTES_ENV": "testing",  # the KDF at its floor
        "WISHNOTES_INSTANCE_PATH": str(tmp_path / "instance"),
        "WISHNOTES_SECRET_KEY": SECRET_KEY,
        "WISHNOTES_PEPPER": PEPPER,
        "WISHNOTES_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "WISHNOTES_PROXY_HOPS": "1",
        "WISHNOTES_RATELIMIT_ENABLED": "true",
    }
    command = [sys.executable, "-m", "wishnotes.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):  # up to 30 s to start (migrations, the crypto self-test)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                time.sleep(0.1)
        else:
            pytest.fail("wishnotes serve did not start listening")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


class _Client:
    """Plain HTTP with a cookie jar, sending the headers a TLS proxy adds."""

    def __init__(self, port: int, client_address: str) -> None:
        self.port = port
        self.forwarded = {"X-Forwarded-For": client_address, "X-Forwarded-Proto": "https"}
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {**self.forwarded, "Host": "127.0.0.1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = "https://127.0.0.1"
            headers["Referer"] = "https://127.0.0.1/login"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            return response, text
        finally:
            connection.close()

    def failed_login(self, number: int) -> int:
        _, page = self.request("GET", "/login")
        token = next(group for group in CSRF_RE.search(page).groups() if group)
        # A different address each time: the per-account limit stays out of the way.
        form = {"email": f"nobody{number}@example.com", "password": "x" * 12, "csrf_token": token}
        response, _ = self.request("POST", "/login", form)
        return response.status


def test_serve_sees_https_through_a_trusted_proxy(proxied_serve):
    response, _ = _Client(proxied_serve, "203.0.113.7").request("GET", "/login")
    assert response.status == 200
    # Sent only when request.is_secure: the forwarded scheme reached the app.
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000"


def test_serve_rate_limits_each_forwarded_client_not_the_proxy(proxied_serve):
    first = _Client(proxied_serve, "203.0.113.7")
    statuses = [first.failed_login(number) for number in range(21)]
    assert statuses[:20] == [422] * 20  # the form again: "wrong email or password"
    assert statuses[20] == 429
    # Another client behind the same proxy has its own budget.
    assert _Client(proxied_serve, "198.51.100.4").failed_login(99) == 422
