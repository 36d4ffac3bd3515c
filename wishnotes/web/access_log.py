"""One log line per request: method, endpoint, status and duration, never the path.

Paths can carry tokens (invite, reset and unsubscribe links), so the line names the endpoint
("pairing.join") instead, and never a query string, form value or address.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request

logger = logging.getLogger("wishnotes.requests")


def init_app(app: Flask) -> None:
    """Time every request and log it once its response is ready."""
    app.before_request(_start)
    app.after_request(_log)


def _start() -> None:
    g.request_started = time.perf_counter()


def _log(response):
    started = g.pop("request_started", None)
    took = "" if started is None else f" {(time.perf_counter() - started) * 1000:.0f}ms"
    logger.info("%s %s %s%s", request.method, request.endpoint or "-", response.status_code, took)
    return response
