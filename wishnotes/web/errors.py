"""Error pages and the mapping of request-level errors to calm responses."""

from __future__ import annotations

from flask import Flask, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from wishnotes.errors import KeyChanged, Locked, StoredKdfRefused
from wishnotes.extensions import db

MESSAGES = {
    400: ("Something in that request was off", "Please go back and try again."),
    403: ("Not available", "This page is not available to you."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Not available", "This page cannot be used that way."),
    409: ("Not possible right now", "Please go back and try again."),
    413: ("Too long", "That was more than this form can take. Please shorten it and try again."),
    422: ("Please check the form", "Something in the form needs another look."),
    429: ("Please wait a moment", "There were many attempts in a short time. Try again shortly."),
    500: ("Something went wrong", "Please try again in a moment. Nothing you wrote was lost."),
    503: ("Just a moment", "The server was briefly busy. Please try again."),
}
CSRF_MESSAGE = "This page was open for a long time or was sent twice. Please try again."


def init_app(app: Flask) -> None:
    """Register the handlers on `app`."""
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(Locked, _locked)
    app.register_error_handler(StoredKdfRefused, _stored_kdf_refused)
    app.register_error_handler(KeyChanged, _key_changed)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(Exception, _unexpected)


def render_error(code: int, detail: str | None = None):
    """Render the error page for an HTTP status code."""
    title, message = MESSAGES.get(code, MESSAGES[400 if code < 500 else 500])
    body = render_template("errors/error.html", code=code, title=title, message=detail or message)
    return body, code


def _http_error(exc: HTTPException):
    # Only descriptions given to our own abort() calls are shown, never werkzeug's defaults.
    ours = exc.description != type(exc).description
    return render_error(exc.code or 500, exc.description if ours else None)


def _csrf_error(exc: CSRFError):
    return render_error(400, CSRF_MESSAGE)


def _locked(exc: Locked):
    return redirect(url_for("auth.unlock", next=request.full_path.rstrip("?")))


def _stored_kdf_refused(exc: StoredKdfRefused):
    db.session.rollback()
    return render_error(409, exc.message)


def _key_changed(exc: KeyChanged):
    # The notes pages have their own handler; this one covers every other page using keys.
    db.session.rollback()
    page = render_template(
        "notes/problem.html", title="Your partner's key has changed", message=exc.message, key=True
    )
    return page, 409


def _database_error(exc: DBAPIError):
    if not exc.connection_invalidated:
        return _unexpected(exc)
    # The database restarted under a pooled connection: the engine has already renewed its
    # pool, so the next request works. Nothing was committed by this one.
    db.session.rollback()
    current_app.logger.warning(
        "Database connection lost on %s %s", request.method, request.endpoint
    )
    body, code = render_error(503)
    return body, code, {"Retry-After": "1"}


def _unexpected(exc: Exception):
    db.session.rollback()
    # The traceback goes to the log only; the page says nothing about the server.
    # The endpoint, not the path: paths can carry invite and reset tokens.
    current_app.logger.exception("Unhandled error on %s %s", request.method, request.endpoint)
    return render_error(500)
