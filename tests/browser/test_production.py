"""Production as users meet it: two gunicorn servers over real TLS, PostgreSQL and Redis.

The production configuration (`WISHNOTES_ENV=production`: Secure cookies, https links, the KDF at
its production cost) runs in two gunicorn processes, each serving TLS with a certificate made here,
against one throwaway PostgreSQL database and the test Redis. Chromium walks the two-partner journey
through the first; a note is then opened and answered on the second, and the sign-in limit counted
on one holds on the other. Runs in the PostgreSQL pass (CI gives both services), once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wishnotes.bench_pages import PHONE

from ..conftest import PEPPER, POSTGRES_URL, SECRET_KEY
from ..smtp import free_port
from .conftest import Site
from .steps import make_couple, unique_email

REDIS_URL = os.environ.get("WISHNOTES_TEST_REDIS_URL")
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        not (POSTGRES_URL and REDIS_URL),
        reason="runs in the PostgreSQL + Redis pass (WISHNOTES_TEST_DATABASE_URL and _REDIS_URL)",
    ),
]


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made for this test only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def production_database() -> Iterator[str]:
    """A database of its own on the test server, built by the migrations as the README says."""
    name = f"wishnotes_prod_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL: no server outlives the test."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(url: str, context: ssl.SSLContext, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", context=context, timeout=5) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not become healthy")


@pytest.fixture
def production(tmp_path, production_database, smtp_server) -> Iterator[list[Site]]:
    """Two gunicorn servers (2 workers of 4 threads each) in the production configuration."""
    cert, key = _certificate(tmp_path)
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "WISHNOTES_ENV": "production",
        "WISHNOTES_DATABASE_URL": production_database,
        "WISHNOTES_REDIS_URL": REDIS_URL,
        "WISHNOTES_SECRET_KEY": SECRET_KEY,
        "WISHNOTES_PEPPER": PEPPER,
        "WISHNOTES_BASE_URL": f"https://127.0.0.1:{ports[0]}",
        "WISHNOTES_SMTP_HOST": "127.0.0.1",
        "WISHNOTES_SMTP_PORT": str(smtp_server.port),
        "WISHNOTES_INSTANCE_PATH": str(tmp_path / "instance"),
        "WISHNOTES_KDF_CONCURRENCY": "2",
    }
    upgrade = subprocess.run(
        [BIN / "wishnotes", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stderr
    trusted = ssl.create_default_context(cafile=str(cert))
    processes = []
    try:
        for port in ports:
            command = [
                BIN / "gunicorn", "--workers", "2", "--threads", "4",
                "--bind", f"127.0.0.1:{port}", "--certfile", str(cert), "--keyfile", str(key),
                "wishnotes:create_app()",
            ]  # fmt: skip
            log = (tmp_path / f"gunicorn-{port}.log").open("w")
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
        sites = [Site(f"https://127.0.0.1:{port}") for port in ports]
        for site, process in zip(sites, processes, strict=True):
            _wait_healthy(site.url, trusted, process)
        yield sites
    finally:
        for process in processes:
            _stop(process)


def _phone_on(sites: list[Site]):
    """A `new_phone` for `make_couple`: a phone that trusts our certificate and reaches both."""
    allowed = {site.netloc for site in sites}
    contexts = []

    def new_phone(browser, site: Site):
        context = browser.new_context(
            viewport=PHONE,
            is_mobile=True,
            has_touch=True,
            base_url=site.url,
            ignore_https_errors=True,  # our own certificate, made in this test
            service_workers="block",
        )
        problems: list[str] = []

        def route(route, request):
            if urlsplit(request.url).netloc in allowed:
                route.continue_()
            else:
                problems.append(request.url)
                route.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.watch = type("Watch", (), {"problems": problems})()
        contexts.append(context)
        return context, page

    return new_phone, contexts


def _sign_in_status(request, site: Site, email: str) -> int:
    page = request.get(f"{site.url}/login").text()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = request.post(
        f"{site.url}/login",
        form={"email": email, "password": "not the password", "csrf_token": token},
        max_redirects=0,
    )
    return answer.status


def test_the_two_partner_journey_runs_over_https_on_two_production_servers(
    browser, production, shots
):
    first, second = production
    new_phone, contexts = _phone_on(production)
    try:
        couple = make_couple(new_phone, browser, first)
        ada, sam = couple["ada"], couple["sam"]
        session = next(c for c in ada.context.cookies() if c["name"] == "wn_session")
        assert session["secure"] and session["httpOnly"]
        shots(ada, "prod-01-inbox-on-first")

        # Ada signed in on the first server; the second opens her note from the same login.
        ada.goto(f"{second.url}{couple['received']}")
        body = ada.locator(".note-body")
        assert body.inner_text().strip() == "I would like a slow breakfast together on Saturday."
        ada.get_by_role("button", name="Show note").click()
        ada.get_by_role("button", name="Yes, let's").click()  # a form posted to the second
        ada.locator(".flash", has_text="Your answer is sent").wait_for()
        shots(ada, "prod-02-answered-on-second")

        sam.goto(f"{second.url}/notes/sent")
        assert sam.locator(".list li").count() >= 1
        assert ada.watch.problems == [] and sam.watch.problems == []

        # The sign-in limit per account lives in Redis: what one server counted, the other knows.
        request = new_phone(browser, first)[0].request  # signed out, cookies of its own
        email = unique_email("limited")
        statuses = [_sign_in_status(request, first, email) for _ in range(6)]
        assert 429 not in statuses
        assert _sign_in_status(request, second, email) == 429
    finally:
        for context in contexts:
            context.close()
