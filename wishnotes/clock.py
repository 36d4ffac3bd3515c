"""The one place the app reads the time, so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, has_app_context


def now() -> datetime:
    """Return the current UTC time, or the app's frozen `NOW` when a test set one."""
    if has_app_context():
        frozen = current_app.config.get("NOW")
        if frozen is not None:
            return frozen() if callable(frozen) else frozen
    return datetime.now(UTC)
