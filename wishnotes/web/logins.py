"""The request's view of its login, and "Where you're signed in" in the settings.

flask-login keeps the login's token in the signed session cookie (`User.get_id`). The remember-me
cookie is written here, not by flask-login, because its secret rotates each time it is used: its
value is "<token>.<secret>", signed the way flask-login signs its own, so flask-login's loader
hands it to `load_user` when the session cookie is gone.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_login.utils import encode_cookie

from wishnotes import keysessions, logins
from wishnotes.clock import now
from wishnotes.models import Login, User
from wishnotes.web.forms import ActionForm

bp = Blueprint("logins", __name__, url_prefix="/settings/logins")


@bp.app_template_filter("device_name")
def device_name(label: str | None) -> str:
    """Say a stored device label ("Firefox on Android", "A browser") in the reader's language.

    Labels are stored as `wishnotes.logins.device_label` writes them; the names of browsers and
    systems stay as they are, the words around them are translated.
    """
    browser, on, system = (label or "").partition(" on ")
    if browser == logins.UNKNOWN_BROWSER:
        return _("A browser on %(system)s", system=system) if on else _("A browser")
    return _("%(browser)s on %(system)s", browser=browser, system=system) if on else browser


def _lifetimes() -> dict:
    config = current_app.config
    return {"idle": config["LOGIN_IDLE"], "remembered": config["REMEMBER_COOKIE_DURATION"]}


def load_user(value: str) -> User | None:
    """flask-login's user loader: the user of the live login a cookie names, else None."""
    if "." in value:
        # A remember-me value: flask-login found no session and copied the cookie in.
        resumed = logins.resume_remembered(cookie_value=value, now=now(), **_lifetimes())
        session.pop("_user_id", None)
        if resumed is not None:
            session["_user_id"] = resumed.token
            if resumed.remember_cookie:
                g.remember_cookie = resumed.remember_cookie
    else:
        key_session_id = keysessions.row_id(request.cookies.get(keysessions.COOKIE_NAME))
        resumed = logins.resume(
            token=value, now=now(), key_session_id=key_session_id, **_lifetimes()
        )
    if resumed is None:
        session.pop("_user_id", None)  # a dead login is not looked up again on every request
        return None
    _remember(resumed.login)
    resumed.user.login_token = resumed.token
    return resumed.user


def current_id() -> int | None:
    """Return the id of the login this request runs under, if any.

    Kept apart from the row: a commit during the request expires the row, and reading its id
    again would cost a round trip (or fail once the row is gone).
    """
    return g.get("login_id") if current_user.is_authenticated else None


def _remember(login: Login) -> None:
    g.login_id = login.id


def sign_in(user: User, *, remember: bool = False) -> Login:
    """Start a new login for `user` in this browser (ending the one it had) and sign it in."""
    previous = current_id()
    if previous is not None:
        logins.end(user=current_user, login_id=previous)
    opened = logins.open_login(
        user=user,
        device=logins.device_label(request.user_agent.string),
        remember=remember,
        now=now(),
        **_lifetimes(),
    )
    user.login_token = opened.token
    _remember(opened.login)
    login_user(user)  # never remember=True: flask-login's cookie would not rotate
    if opened.remember_cookie:
        g.remember_cookie = opened.remember_cookie
    elif current_app.config["REMEMBER_COOKIE_NAME"] in request.cookies:
        session["_remember"] = "clear"  # an older login's remember-me cookie goes
    return opened.login


def sign_out() -> None:
    """End this browser's login (its key sessions go with it) and forget its cookies."""
    login_id = current_id()
    if login_id is not None:
        logins.end(user=current_user, login_id=login_id)
    g.pop("remember_cookie", None)
    logout_user()


@bp.after_app_request
def _set_remember_cookie(response):
    value = g.pop("remember_cookie", None)
    if value:
        config = current_app.config
        response.set_cookie(
            config["REMEMBER_COOKIE_NAME"],
            encode_cookie(value),
            max_age=int(config["REMEMBER_COOKIE_DURATION"].total_seconds()),
            secure=config["REMEMBER_COOKIE_SECURE"],
            httponly=True,
            samesite=config["REMEMBER_COOKIE_SAMESITE"],
        )
    return response


@bp.post("/<int:login_id>/end")
@login_required
def end(login_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    if login_id == current_id():
        return redirect(url_for("settings.index"))  # this device signs out with "Sign out"
    if not logins.end(user=current_user, login_id=login_id):
        abort(404)
    flash(_("That device is signed out."))
    return redirect(url_for("settings.index"))


@bp.post("/end-others")
@login_required
def end_others():
    if not ActionForm().validate_on_submit():
        abort(400)
    ended = logins.end_others(user=current_user, login_id=current_id())
    flash(_("Every other device is signed out.") if ended else _("No other device was signed in."))
    return redirect(url_for("settings.index"))
