"""Error pages and the mapping of request-level errors to calm responses.

The pages for unexpected errors and for a database that cannot be reached never touch the
database: the signed-in user is not loaded (or reloaded) for them, so they render even when
the database is what failed, and `/healthz` answers JSON whatever the cookies.
"""

from __future__ import annotations

import contextlib

from flask import Flask, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from wishnotes.errors import KdfBusy, KeyChanged, Locked, StoredKdfRefused
from wishnotes.extensions import db, login_manager
from wishnotes.i18n import _l

MESSAGES = {
    400: (_l("Something in that request was off"), _l("Please go back and try again.")),
    403: (_l("Not available"), _l("This page is not available to you.")),
    404: (_l("Not found"), _l("There is nothing at this address.")),
    405: (_l("Not available"), _l("This page cannot be used that way.")),
    409: (_l("Not possible right now"), _l("Please go back and try again.")),
    413: (
        _l("Too long"),
        _l("That was more than this form can take. Please shorten it and try again."),
    ),
    422: (_l("Please check the form"), _l("Something in the form needs another look.")),
    429: (
        _l("Please wait a moment"),
        _l("There were many attempts in a short time. Try again shortly."),
    ),
    500: (
        _l("Something went wrong"),
        _l("Please try again in a moment. Nothing you wrote was lost."),
    ),
    503: (
        _l("Resting for a moment"),
        _l("The notes cannot be reached just now. Please try again in a moment."),
    ),
}
# A pool renewed after a restart serves the next request; an unreachable database takes longer.
RETRY_AFTER_RENEWED, RETRY_AFTER_UNREACHABLE = 1, 30
CSRF_MESSAGE = _l("This page was open for a long time or was sent twice. Please try again.")


def init_app(app: Flask) -> None:
    """Register the handlers on `app`."""
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(Locked, _locked)
    app.register_error_handler(KdfBusy, _busy)
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


def _busy(exc: KdfBusy):
    # Nothing was saved: a registration that waited too long is rolled back, not half made.
    db.session.rollback()
    body, code = render_error(503, exc.message)
    return body, code, {"Retry-After": str(exc.retry_after)}


def _locked(exc: Locked):
    return redirect(url_for("auth.unlock", next=request.full_path.rstrip("?")))


def _stored_kdf_refused(exc: StoredKdfRefused):
    db.session.rollback()
    return render_error(409, exc.message)


def _key_changed(exc: KeyChanged):
    # The notes pages have their own handler; this one covers every other page using keys.
    db.session.rollback()
    page = render_template(
        "notes/problem.html",
        title=_l("Your partner's key has changed"),
        message=exc.message,
        key=True,
    )
    return page, 409


def _unexpected(exc: Exception):
    _leave_the_database()
    # The traceback goes to the log only; the page says nothing about the server.
    # The endpoint, not the path: paths can carry invite and reset tokens.
    current_app.logger.exception("Unhandled error on %s %s", request.method, request.endpoint)
    return render_error(500)


def _database_error(exc: DBAPIError):
    # Unreachable, restarted under a pooled connection, or locked: the database's own trouble,
    # not the request's. Anything else (a constraint, a bug) is an unexpected error.
    if not (exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)):
        return _unexpected(exc)
    _leave_the_database()
    # One line, no traceback: the driver's message names the trouble, never a bound value.
    reason = str(exc.orig or type(exc).__name__).splitlines()[0][:200]
    current_app.logger.warning(
        "Database unavailable on %s %s: %s", request.method, request.endpoint, reason
    )
    if request.endpoint == "main.healthz":
        response = jsonify(status="error", database="error"), 503
    elif request.endpoint == "notes.compose" and request.method == "POST":
        response = _note_not_sent()
    else:
        response = render_error(503)
    response = current_app.make_response(response)
    # The engine has already renewed its pool after a restart: the next request works.
    retry = RETRY_AFTER_RENEWED if exc.connection_invalidated else RETRY_AFTER_UNREACHABLE
    response.headers["Retry-After"] = str(retry)
    return response


def _note_not_sent():
    """Hand the note being written back in a form that can send it again (nothing is stored)."""
    from wishnotes.web.forms import ComposeForm

    form = ComposeForm()  # filled from the request: the words typed, never the password
    return render_template("notes/not_sent.html", form=form), 503


def _leave_the_database() -> None:
    """Let the error page render without the database: end the transaction, forget the user.

    After a rollback every loaded row is expired, so showing the user (name, look) would read
    the database again; the error page shows the plain, discreet frame instead.
    """
    with contextlib.suppress(SQLAlchemyError):
        db.session.rollback()
    g._login_user = login_manager.anonymous_user()
