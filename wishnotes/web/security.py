"""Response headers, proxy handling and request checks that apply to every page."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

from flask import Flask, abort, g, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from wishnotes.i18n import _l

UNREADABLE_FORM = _l("The form contained characters that could not be read.")

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The browser's own word on where a request came from: "none" is a typed address or a bookmark.
OUR_OWN_SITES = frozenset({"same-origin", "none"})
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def init_app(app: Flask) -> None:
    """Install the proxy fix, the header hook and the encoding check on `app`."""
    if app.config["PROXY_HOPS"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_HOPS"], x_proto=1, x_host=1)
    app.before_request(reject_undecodable_form)
    app.after_request(add_headers)


def reject_undecodable_form() -> None:
    """Refuse a form whose bytes are not UTF-8 instead of silently replacing characters."""
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    if request.mimetype == "application/x-www-form-urlencoded":
        values = _urlencoded_values(request.get_data(cache=True))
    elif request.mimetype == "multipart/form-data":
        values = _multipart_values(request.get_data(cache=True))
    else:
        return
    try:
        for value in values:
            value.decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        abort(400, description=str(UNREADABLE_FORM))


def _urlencoded_values(body: bytes) -> Iterator[bytes]:
    for part in body.split(b"&"):
        yield unquote_to_bytes(part.replace(b"+", b" "))


def _multipart_values(body: bytes) -> Iterator[bytes]:
    """Yield the raw bytes of each field of a multipart body (werkzeug decodes them leniently).

    Files are not text and are left alone; no form here takes one. A malformed body raises
    ValueError, which is refused like undecodable text.
    """
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise ValueError("multipart body without a boundary")
    decoder = MultipartDecoder(boundary.encode("latin-1"))
    decoder.receive_data(body)
    decoder.receive_data(None)
    chunks: list[bytes] | None = None
    while not isinstance(event := decoder.next_event(), NeedData | Epilogue):
        if isinstance(event, Field):
            chunks = []
        elif isinstance(event, File):
            chunks = None
        elif isinstance(event, Data) and chunks is not None:
            chunks.append(event.data)
            if not event.more_data:
                yield b"".join(chunks)


def add_headers(response):
    """Add the security headers; keep signed-in pages out of every cache."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static":
        # Pages may show who someone is paired with; no browser or proxy cache keeps them.
        response.headers["Cache-Control"] = "no-store"
    return response


class OriginCheckingCSRF(CSRFProtect):
    """Flask-WTF's token check, with the origin checked from fetch metadata instead of Referer.

    Pages send `Referrer-Policy: no-referrer`, so a note's address never reaches another site;
    browsers then send no Referer, and Flask-WTF's HTTPS Referer check (WTF_CSRF_SSL_STRICT, off
    in config.py) would refuse every form. The token stays the main defence; this check adds what
    the Referer check was for: a post from another origin, even a sibling subdomain that could
    plant its own session cookie and token, is refused.
    """

    def protect(self, apply_exemptions: bool = False) -> None:
        super().protect(apply_exemptions=apply_exemptions)
        if g.get("csrf_valid") and not posted_from_our_own_origin():
            self._error_response("The request did not come from this site.")


def posted_from_our_own_origin() -> bool:
    """Whether the browser says the request came from one of our pages.

    `Sec-Fetch-Site` is sent by every current browser and is not affected by the referrer
    policy. Where it is missing, an `Origin` header is compared when it names one; under
    `no-referrer` browsers send `Origin: null` on form posts, which says nothing either way.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in OUR_OWN_SITES
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin == f"{request.scheme}://{request.host}"
    return True
