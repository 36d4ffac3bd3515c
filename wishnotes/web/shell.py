"""The frame around every page: look, navigation, versioned assets, quick exit and idle lock.

Templates get these through a context processor, so `base.html` needs no view to pass them.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, has_request_context, request, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.security import safe_join

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


_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


def compact_css(text: str) -> str:
    """A stylesheet as sent: its comments (for whoever edits it) and indentation left out."""
    lines = (line.strip() for line in _CSS_COMMENT.sub("", text).splitlines())
    return "\n".join(line for line in lines if line) + "\n"


@bp.record_once
def _serve_compact_stylesheets(state) -> None:
    """Serve .css files compacted (once per file version); every other static file as it is."""
    app = state.app
    plain = app.view_functions["static"]
    compacted: dict[str, tuple[float, bytes]] = {}

    def static(filename: str):
        path = safe_join(app.static_folder or "", filename) if filename.endswith(".css") else None
        if path is None or not os.path.isfile(path):
            return plain(filename=filename)
        mtime = os.stat(path).st_mtime
        known = compacted.get(path)
        if known is None or known[0] != mtime:
            body = compact_css(Path(path).read_text("utf-8")).encode("utf-8")
            known = compacted[path] = (mtime, body)
        return Response(known[1], mimetype="text/css")

    app.view_functions["static"] = static


def asset_url(filename: str) -> str:
    """Return the URL of a static file with a content hash, so it can be cached for a year."""
    path = os.path.join(current_app.static_folder or "", filename)
    versions: dict[tuple[str, str], tuple[float, str]] = current_app.extensions.setdefault(
        "wishnotes.assets", {}
    )
    mtime = os.stat(path).st_mtime
    # Keyed by the script root too: a URL built for one mount point is not another's.
    key = (filename, request.script_root if has_request_context() else "")
    known = versions.get(key)
    if known is None or known[0] != mtime:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
        known = versions[key] = (mtime, url_for("static", filename=filename, v=digest))
    return known[1]


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
