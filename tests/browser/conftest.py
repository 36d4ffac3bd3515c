"""Browser tests: Debian's Chromium driven by Playwright at a phone viewport.

The app runs with waitress in a background thread on 127.0.0.1 (file SQLite in a temp folder, the
KDF at its floor, CSRF on). Every request that would leave the machine is stopped and recorded, so
a test can assert that none was made. Under CI=true a browser that cannot start fails the run.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from wishnotes import create_app
from wishnotes.bench.pages import CHROMIUM, CHROMIUM_ARGS, PHONE  # one set of launch settings
from wishnotes.extensions import db

from ..conftest import PEPPER, SECRET_KEY

SHOTS = Path("/tmp/wishnotes-shots")  # noqa: S108 - a fixed folder people open to look
QUICK_EXIT_URL = "https://www.wikipedia.org/"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class Clock:
    """The server's time: real time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class Site:
    """An app a phone can reach: its address (a server in this process or in another)."""

    url: str

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc


@dataclass
class Server(Site):
    app: object = None
    clock: Clock = field(default_factory=Clock)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    from waitress.server import create_server

    folder = tmp_path_factory.mktemp("browser-app")
    clock = Clock()
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(folder / "instance"),
            "SECRET_KEY": SECRET_KEY,
            "PEPPER": PEPPER,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'browser.sqlite3'}",
            "QUICK_EXIT_URL": QUICK_EXIT_URL,
            "NOW": clock,
        }
    )
    with app.app_context():
        db.create_all()
    wsgi = create_server(app, host="127.0.0.1", port=0, threads=8, ident="wishnotes-test")
    url = f"http://127.0.0.1:{wsgi.effective_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    try:
        yield Server(app=app, url=url, clock=clock)
    finally:
        wsgi.close()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not IN_CI:
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt install chromium)")
    from playwright.sync_api import sync_playwright

    try:
        playwright = sync_playwright().start()
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:  # in CI this must fail, not skip
        if IN_CI:
            pytest.fail(f"Chromium could not start under CI: {exc}")
        pytest.skip(f"Chromium could not start: {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


@dataclass
class Watch:
    """What a browser context did that a test must know about."""

    server: Server
    outside: list[str] = field(default_factory=list)  # requests to anywhere but the app
    problems: list[str] = field(default_factory=list)  # CSP violations and script errors


def _guard(context, watch: Watch) -> None:
    """Let requests reach the app only; answer the neutral exit site with a stub page."""

    def route(route, request):
        if urlsplit(request.url).netloc == watch.server.netloc:
            route.continue_()
            return
        watch.outside.append(request.url)
        if request.url == QUICK_EXIT_URL and request.is_navigation_request():
            route.fulfill(status=200, content_type="text/html", body="<title>Neutral</title>Hi")
        else:
            route.abort()

    context.route("**/*", route)


def _watch_page(page, watch: Watch) -> None:
    def console(message):
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused" in text):
            watch.problems.append(f"CSP: {text}")

    page.on("console", console)
    page.on("pageerror", lambda error: watch.problems.append(f"script error: {error}"))


def new_phone(
    browser,
    server: Server,
    *,
    javascript: bool = True,
    service_workers: bool = False,
    timezone_id: str | None = None,
    viewport: dict | None = None,
    locale: str | None = None,
):
    """Open a phone-sized browser context (no service worker unless asked) and its first page."""
    context = browser.new_context(
        viewport=viewport or PHONE,
        timezone_id=timezone_id,
        locale=locale,  # also the Accept-Language the phone sends
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        java_script_enabled=javascript,
        service_workers="allow" if service_workers else "block",
        base_url=server.url,
        # Also checks the reduced-motion path; state changes are then immediate to assert on.
        reduced_motion="reduce",
    )
    watch = Watch(server=server)
    _guard(context, watch)
    context.on("page", lambda page: _watch_page(page, watch))
    page = context.new_page()
    page.watch = watch
    return context, page


@pytest.fixture
def phone(browser, server):
    """A phone with scripts on; fails the test if a page broke the CSP or threw."""
    context, page = new_phone(browser, server)
    yield page
    context.close()
    assert page.watch.problems == []


@pytest.fixture
def second_phone(browser, server):
    context, page = new_phone(browser, server)
    yield page
    context.close()
    assert page.watch.problems == []


@pytest.fixture
def shots(tmp_path):
    """Save a screenshot in the test's folder, and a copy in /tmp/wishnotes-shots to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, *, full_page: bool = False) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        shutil.copy(path, SHOTS / path.name)
        return path

    return take


@pytest.fixture
def couple(browser, server):
    """Ada and Sam, paired on two phones, a week started and a note each way."""
    from .steps import make_couple

    made = make_couple(new_phone, browser, server)
    yield made
    for context in made["contexts"]:
        context.close()
    assert made["ada"].watch.problems == [] and made["sam"].watch.problems == []
