"""An installed wheel works: built from this tree, installed into a fresh virtual environment.

The wheel is installed outside the source tree and `wishnotes serve` runs from an empty folder on a
temporary instance, so nothing can come from the checkout: templates, prompt data, migrations and
static files must all travel inside the wheel. Two partners then register (the recovery kit page),
pair and exchange notes in Chromium, and a note page opens. Runs once, in the SQLite pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import POSTGRES_URL
from ..smtp import free_port
from .conftest import Site, new_phone
from .steps import make_couple

SOURCE = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(POSTGRES_URL), reason="runs once, in the SQLite pass"),
]


def _run(*command, **kwargs) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Build the wheel and install it into a new virtual environment; return its `bin/`."""
    folder = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    _run(*pip, "wheel", "--no-deps", "--quiet", "--wheel-dir", str(folder / "dist"), str(SOURCE))
    (wheel,) = (folder / "dist").glob("wishnotes-*.whl")
    venv.create(folder / "venv", with_pip=True)
    bin_dir = folder / "venv" / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", str(wheel), cwd=folder)
    return bin_dir


@pytest.fixture(scope="module")
def served(installed, tmp_path_factory) -> Iterator[Site]:
    """`wishnotes serve` from the installed wheel, started in an empty folder."""
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("WISHNOTES_")} | {
        "WISHNOTES_INSTANCE_PATH": str(folder / "instance"),
        "PYTHONSAFEPATH": "1",
    }
    log = (folder / "serve.log").open("w")
    command = [installed / "wishnotes", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=log)
    site = Site(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (folder / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"{site.url}/healthz", timeout=5) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "the installed app did not start"
                time.sleep(0.3)
        yield site
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _files(folder: Path) -> set[str]:
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_installed_wheel_carries_every_file_and_no_top_level_config(installed):
    site_packages = next((installed.parent / "lib").glob("python3*/site-packages"))
    assert not (site_packages / "config.py").exists()
    package = site_packages / "wishnotes"
    assert (package / "_config" / "config.py").is_file()
    # Every file of the package in this tree (data files too), and every template.
    assert _files(SOURCE / "wishnotes") <= _files(package)
    assert {f"templates/{name}" for name in _files(SOURCE / "templates")} <= _files(package)


def test_an_installed_wheel_serves_registration_the_kit_and_a_note(browser, served, shots):
    couple = make_couple(new_phone, browser, served)  # registers both: the kit page rendered
    try:
        ada = couple["ada"]
        ada.goto(couple["received"])
        body = ada.locator(".note-body")
        assert body.inner_text().strip() == "I would like a slow breakfast together on Saturday."
        shots(ada, "wheel-note")
        stylesheet = ada.locator("link[rel=stylesheet]").first.get_attribute("href")
        assert ada.request.get(f"{served.url}{stylesheet}").status == 200  # static files too
        ada.goto("/week/")  # the prompt library travelled with the wheel
        assert ada.locator("main").inner_text().strip()
        ada.goto("/wishes/cards")  # and the wish cards
        assert ada.locator(".list li").count() > 10
    finally:
        for context in couple["contexts"]:
            context.close()
