"""Register, log in, unlock and log out."""

from __future__ import annotations

import hashlib

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from wishnotes import accounts, keysessions, preferences
from wishnotes.clock import now
from wishnotes.errors import InvalidCredentials, InvalidInput
from wishnotes.extensions import limiter
from wishnotes.web import keys
from wishnotes.web.forms import LoginForm, RegisterForm, UnlockForm
from wishnotes.web.navigation import config_limit, form_error, render_form, safe_next
from wishnotes.web.recovery import kit_context

bp = Blueprint("auth", __name__)


def _login_account_key() -> str:
    """Rate-limit key per account: a digest of the email typed, so logs never show the address."""
    email = (request.form.get("email") or "").strip().lower()[:254]
    return "login-account:" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


def _start_session(unlocked: accounts.Unlocked, *, remember: bool, target: str):
    login_user(unlocked.user, remember=remember)
    cookie = keysessions.open_session(user=unlocked.user, user_key=unlocked.user_key, now=now())
    response = make_response(redirect(target))
    keys.set_cookie(response, cookie)
    return response


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(config_limit("REGISTER_LIMIT_PER_ADDRESS"), methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            reg = accounts.register(
                email=form.email.data,
                display_name=form.display_name.data,
                password=form.password.data,
                kdf=keys.kdf(),
                now=now(),
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            preferences.adopt_timezone(user=reg.user, name=form.browser_timezone.data)
            login_user(reg.user)
            cookie = keysessions.open_session(user=reg.user, user_key=reg.user_key, now=now())
            # Shown once, straight from this response: the recovery key is never stored.
            response = make_response(
                render_template(
                    "auth/recovery_kit.html",
                    **kit_context(reg.recovery_key, next_url=safe_next(request.args.get("next"))),
                )
            )
            keys.set_cookie(response, cookie)
            return response
    return render_form("auth/register.html", form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(config_limit("LOGIN_LIMIT_PER_ADDRESS"), methods=["POST"])
@limiter.limit(
    config_limit("LOGIN_LIMIT_PER_ACCOUNT"), methods=["POST"], key_func=_login_account_key
)
def login():
    if current_user.is_authenticated and keys.is_unlocked():
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            unlocked = accounts.authenticate(
                email=form.email.data, password=form.password.data, kdf=keys.kdf()
            )
        except InvalidCredentials as exc:
            form.password.errors.append(exc.message)
        else:
            target = safe_next(request.args.get("next")) or url_for("main.home")
            return _start_session(unlocked, remember=form.remember.data, target=target)
    return render_form("auth/login.html", form)


@bp.route("/unlock", methods=["GET", "POST"])
@login_required
@limiter.limit(config_limit("LOGIN_LIMIT_PER_ADDRESS"), methods=["POST"])
def unlock():
    form = UnlockForm()
    if form.validate_on_submit():
        try:
            unlocked = accounts.authenticate(
                email=current_user.email, password=form.password.data, kdf=keys.kdf()
            )
        except InvalidCredentials:
            form.password.errors.append("That password does not match.")
        else:
            target = safe_next(request.args.get("next")) or url_for("main.home")
            return _start_session(unlocked, remember=False, target=target)
    reason = UNLOCK_REASONS.get(request.args.get("why", ""), UNLOCK_DEFAULT)
    return render_form("auth/unlock.html", form, reason=reason)


# Why the unlock page appears, said on it (?why=): nothing is wrong, the notes closed themselves.
UNLOCK_REASONS = {
    "lock": "You locked your notes. Your login stays; enter your password to open them again.",
    "idle": "Your notes locked themselves after a quiet while, so nobody else can open them on "
    "this device. Enter your password to open them again.",
}
UNLOCK_DEFAULT = (
    "Your notes lock themselves after 30 quiet minutes, after 12 hours, or when you press Lock; "
    "staying signed in on this device keeps your login, never the notes open. Enter your "
    "password to open them again."
)


@bp.post("/lock")
@login_required
def lock():
    """End this browser's key session at once; the login stays."""
    keysessions.close_session(cookie_value=request.cookies.get(keysessions.COOKIE_NAME))
    response = make_response(redirect(url_for("auth.unlock", why="lock")))
    keys.clear_cookie(response)
    return response


@bp.route("/logout", methods=["POST"])
def logout():
    keysessions.close_session(cookie_value=request.cookies.get(keysessions.COOKIE_NAME))
    logout_user()
    response = make_response(redirect(url_for("auth.login")))
    keys.clear_cookie(response)
    flash("You are signed out.")
    return response
