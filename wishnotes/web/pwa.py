"""The installable web app: manifest, service worker and the offline page.

The service worker keeps only the shell (the offline page, CSS, script, icons) and never a page that
a signed-in user saw: notes and names must not rest in a browser cache.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, abort, jsonify, make_response, render_template, request, url_for

from wishnotes import appearance, i18n
from wishnotes.web.shell import SHELL_ASSETS, asset_url

bp = Blueprint("pwa", __name__)

MANIFEST_TYPE = "application/manifest+json"
ICON_SIZES = (192, 512)


def manifest_for(look: appearance.Look) -> dict:
    """Return the web app manifest for a look (the name and icons on the home screen)."""
    icons = [
        {
            "src": asset_url(f"icons/{look.icon}-{size}.png"),
            "sizes": f"{size}x{size}",
            "type": "image/png",
            "purpose": "any",
        }
        for size in ICON_SIZES
    ]
    icons.append(
        {
            "src": asset_url(f"icons/{look.icon}-maskable-512.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        }
    )
    return {
        "id": "/",
        "name": str(look.name),
        "short_name": str(look.name),
        "lang": i18n.current(),
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": look.theme_color,
        "background_color": look.background_color,
        "icons": icons,
    }


def shell_urls(language: str | None = None) -> list[str]:
    """Return what the service worker stores at install: the offline page and static files.

    The offline page is the one of the page's language (English without one): the worker
    fetches it without cookies, so the language travels in its address.
    """
    looks = appearance.LOOKS.values()
    return [
        _offline_url(language),
        *(asset_url(name) for name in SHELL_ASSETS),
        *(asset_url(f"icons/{look.icon}.svg") for look in looks),
    ]


@bp.get("/manifest.webmanifest")
def manifest():
    # The look and the language come in the URL: browsers fetch manifests without cookies.
    look = appearance.LOOKS.get(request.args.get("look") or appearance.DEFAULT_LOOK.key)
    if look is None:
        abort(404)
    with i18n.in_language(i18n.normalize(request.args.get("lang")) or i18n.visitor_language()):
        response = jsonify(manifest_for(look))
    response.mimetype = MANIFEST_TYPE
    return response


def _offline_url(language: str | None) -> str:
    code = i18n.normalize(language)
    return url_for("pwa.offline", lang=code if code and code != i18n.DEFAULT else None)


@bp.get("/sw.js")
def service_worker():
    # Registered as /sw.js?lang=ru by a Russian page (see app.js), /sw.js by an English one.
    language = request.args.get("lang")
    urls = shell_urls(language)
    version = hashlib.sha256("\n".join(urls).encode("utf-8")).hexdigest()[:12]
    body = render_template("pwa/sw.js", version=version, shell=urls, offline=_offline_url(language))
    response = make_response(body)
    response.mimetype = "text/javascript"
    # Scope "/" is the default for a worker served from the root; said explicitly for proxies.
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/offline")
def offline():
    # Stored by the service worker, so it is rendered the same for everyone: no name, no token;
    # in the language its address names (the worker sends no cookies), else the browser's.
    with i18n.in_language(i18n.normalize(request.args.get("lang")) or i18n.visitor_language()):
        return render_template(
            "pwa/offline.html", public_shell=True, look=appearance.DEFAULT_LOOK, blur_notes=True
        )
