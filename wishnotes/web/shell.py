"""The frame around every page: look, navigation, versioned assets, quick exit and idle lock.

Templates get these through a context processor, so `base.html` needs no view to pass them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, current_app, has_request_context, request, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from wishnotes import appearance, keysessions
from wishnotes.clock import now
from wishnotes.i18n import _l

bp = Blueprint("shell", __name__)

# Main navigation, a bottom tab bar on phones: (endpoint, label, icon, who sees it, what else
# marks it as the current page: endpoints, or "blueprint.*" for a whole blueprint). An exact
# endpoint wins over a blueprint match, so the compose page is "Write", not "Notes". Pages that
# are no tab's (recovery kit, joining, ending a pair, help) mark none. Entries whose blueprint
# is not registered are left out. Tabs share the row equally: a sixth (e.g. "Together" for the
# practices) fits at 320 px once labels stay short ("More" instead of "Settings").
PAIRED, UNPAIRED, EVERYONE = "paired", "unpaired", "everyone"
NAV: tuple[tuple[str, object, str, str, tuple[str, ...]], ...] = (
    ("main.home", _l("Home"), "home", EVERYONE, ()),
    ("notes.inbox", _l("Notes"), "notes", PAIRED, ("notes.*",)),
    ("notes.compose", _l("Write"), "write", PAIRED, ()),
    ("program.index", _l("Week"), "week", PAIRED, ("program.*",)),
    ("pairing.index", _l("Partner"), "partner", UNPAIRED, ("pairing.create_invite",)),
    (
        "settings.index",
        _l("Settings"),
        "settings",
        EVERYONE,
        ("settings.*", "appearance.*", "account.*", "emails.settings"),
    ),
)
# Static files every page uses; the service worker keeps these (and nothing personal) offline.
SHELL_ASSETS = ("css/app.css", "js/app.js")
IMMUTABLE = "public, max-age=31536000, immutable"


@bp.record_once
def _check_config(state) -> None:
    url = state.app.config.get("QUICK_EXIT_URL") or ""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise RuntimeError(f"QUICK_EXIT_URL must be an http(s) address, not {url!r}")


def asset_url(filename: str) -> str:
    """Return the URL of a static file with a content hash, so it can be cached for a year."""
    path = Path(current_app.static_folder or "") / filename
    versions: dict[str, tuple[float, str]] = current_app.extensions.setdefault(
        "wishnotes.assets", {}
    )
    mtime = path.stat().st_mtime
    known = versions.get(filename)
    if known is None or known[0] != mtime:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        known = versions[filename] = (mtime, digest)
    return url_for("static", filename=filename, v=known[1])


def nav_items() -> list[dict]:
    """Return the main navigation for a signed-in user, marking the current page.

    Someone without a partner sees no Notes, Write or Week tabs that would only say "pair
    first"; someone who has not saved the recovery kit yet sees none (they lead back to it).
    """
    if current_user.recovery_confirmed_at is None:
        return []
    audience = PAIRED if current_user.pair_id is not None else UNPAIRED
    entries = [
        entry
        for entry in NAV
        if entry[0] in current_app.view_functions and entry[3] in (audience, EVERYONE)
    ]
    here = {request.endpoint, f"{request.blueprint}.*"}
    current = next((e[0] for e in entries if e[0] == request.endpoint), None) or next(
        (e[0] for e in entries if here & set(e[4])), None
    )
    return [
        {"url": url_for(endpoint), "label": label, "icon": icon, "current": endpoint == current}
        for endpoint, label, icon, _, _ in entries
    ]


def idle_seconds() -> int | None:
    """Return how long this browser's notes stay unlocked without activity (None: locked)."""
    try:
        return keysessions.seconds_left(
            cookie_value=request.cookies.get(keysessions.COOKIE_NAME),
            now=now(),
            idle=current_app.config["KEY_SESSION_IDLE"],
        )
    except SQLAlchemyError:
        # The error page must still render when the database is what failed.
        return None


@bp.app_context_processor
def shell_context() -> dict:
    # Emails are rendered outside any request (in a worker): there is no user then.
    signed_in = has_request_context() and current_user.is_authenticated
    user = current_user if signed_in else None
    return {
        "look": appearance.look_of(user),
        "blur_notes": appearance.blurs_notes(user),
        "asset_url": asset_url,
        "nav_items": nav_items,
        "idle_seconds": idle_seconds,
        "quick_exit_url": current_app.config["QUICK_EXIT_URL"],
    }


@bp.after_app_request
def cache_versioned_assets(response):
    """Let browsers keep a hashed static file for a year; its URL changes with its content."""
    if request.endpoint == "static" and request.args.get("v") and response.status_code == 200:
        response.headers["Cache-Control"] = IMMUTABLE
    return response
