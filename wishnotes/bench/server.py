"""The benchmark's server: the real app, served by gunicorn (or waitress) in a process of its own.

The server process builds the app from WISHNOTES_* variables exactly as production does, plus
two baseline pages that exist only here: `/bench/hello` (Flask's smallest answer) and
`/bench/baseline` (one database read, then a template file through base.html, compiled once
and cached by Jinja like every page of the app). The load client runs in the calling process.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Blueprint, Flask, render_template
from flask_login import current_user, login_required

from wishnotes import create_app
from wishnotes.extensions import db
from wishnotes.models import Pair

MARKER = "WISHNOTES_BENCH_SERVER"  # set only in the environment of a server started here


def create_bench_app() -> Flask:
    """Build the production app from the environment and add the two baseline pages."""
    if os.environ.get(MARKER) != "1":
        raise RuntimeError("the baseline pages exist only in a server started by wishnotes bench")
    app = create_app()
    attach_baselines(app)
    return app


def attach_baselines(app: Flask) -> None:
    """Mount /bench/hello and /bench/baseline on `app`."""
    bp = Blueprint("bench", __name__, url_prefix="/bench", template_folder="templates")

    @bp.get("/hello")
    def hello():
        return "hello"

    @bp.get("/baseline")
    @login_required
    def baseline():
        pair = db.session.get(Pair, current_user.pair_id)
        return render_template("bench/baseline.html", pair=pair)

    app.register_blueprint(bp)


def has_gunicorn() -> bool:
    return importlib.util.find_spec("gunicorn") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(app: Flask, *, env: str = "production") -> dict[str, str]:
    """The WISHNOTES_* variables that rebuild `app`'s settings in the `env` environment."""
    config = app.config
    return {
        **os.environ,
        MARKER: "1",
        "WISHNOTES_ENV": env,
        "WISHNOTES_BASE_URL": "https://bench.invalid",
        "WISHNOTES_SECRET_KEY": config["SECRET_KEY"],
        "WISHNOTES_PEPPER": config["PEPPER"],
        "WISHNOTES_DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "WISHNOTES_INSTANCE_PATH": app.instance_path,
        "WISHNOTES_RATELIMIT_ENABLED": "false",  # one client address hammers every form
        "WISHNOTES_LOG_LEVEL": "WARNING",
    }


@contextmanager
def served(
    app: Flask, *, workers: int = 2, threads: int = 4, env: str = "production"
) -> Iterator[tuple[int, str]]:
    """Start the server in its own process on a free loopback port; yield (port, description).

    Production settings by default (secure cookies, which this plain-HTTP client sends back
    regardless); a browser on plain HTTP needs `env="development"`.
    """
    port = _free_port()
    if has_gunicorn():
        command = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread"]
        command += ["--workers", str(workers), "--threads", str(threads)]
        command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
        command += ["wishnotes.bench.server:create_bench_app()"]
        described = f"gunicorn {workers} workers x {threads} threads (gthread)"
    else:
        command = [sys.executable, "-m", "wishnotes.bench.server", str(port), str(threads)]
        described = f"waitress, {threads} threads (gunicorn is not installed)"
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command,
        env=server_environment(app, env=env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_serving(process, port)
        yield port, described
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_serving(process: subprocess.Popen, port: int) -> None:
    import http.client

    deadline = time.monotonic() + 120  # workers start the app, run the crypto self-test
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(
                "the benchmark server stopped: " + process.stderr.read().decode()[-2000:]
            )
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/bench/hello")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            time.sleep(0.2)
    raise click.ClickException("the benchmark server did not answer within 120 s")


def _serve_with_waitress(port: int, threads: int) -> None:
    import waitress

    waitress.serve(create_bench_app(), host="127.0.0.1", port=port, threads=threads)


if __name__ == "__main__":
    _serve_with_waitress(int(sys.argv[1]), int(sys.argv[2]))
