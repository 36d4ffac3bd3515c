"""Register, log in, unlock and log out."""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import accounts, i18n, keysessions, preferences
from wishnotes.clock import now
from wishnotes.errors import InvalidCredentials, InvalidInput, KdfBusy
from wishnotes.extensions import limiter
from wishnotes.i18n import _l
from wishnotes.web import keys, logins
from wishnotes.web.forms import LoginForm, RegisterForm, UnlockForm
from wishnotes.web.language import keep_on_browser
from wishnotes.web.limits import password_checks, signed_in_email, typed_email
from wishnotes.web.navigation import config_limit, form_error, render_form, safe_next
from wishnotes.web.recovery import show_kit

bp = Blueprint("auth", __name__)


def _unlocked_redirect(user_key: bytes, target: str):
    cookie = keys.open_session(user_key)
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
                language=i18n.current(),
                submission_key=form.submission_key.data,
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            if reg.recovery_key is None:
                # This same form again (a double click, or its answer never arrived): the account
                # the first post made, signed in. Its kit went to that post only and is never
                # stored; until one is confirmed, every page leads to making a new kit.
                logins.sign_in(reg.user)
                target = safe_next(request.args.get("next")) or url_for("main.home")
                return _unlocked_redirect(reg.user_key, target)
            preferences.adopt_timezone(user=reg.user, name=form.browser_timezone.data)
            logins.sign_in(reg.user)
            cookie = keys.open_session(reg.user_key)
            # Shown once, straight from this response: the recovery key is never stored.
            response = make_response(
                show_kit(
                    reg.recovery_key,
                    user=reg.user,
                    key_cookie=cookie,
                    next_url=safe_next(request.args.get("next")),
                )
            )
            keys.set_cookie(response, cookie)
            return response
    return render_form("auth/register.html", form)


@bp.route("/login", methods=["GET", "POST"])
@password_checks(typed_email)
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
        except KdfBusy as exc:
            # The form again, email kept, saying so: trying again is one press, nothing to
            # reload (cheap for a server that is busy already).
            form.form_errors.append(exc.message)
            page, _status = render_form("auth/login.html", form)
            return page, 503, {"Retry-After": str(exc.retry_after)}
        else:
            logins.sign_in(unlocked.user, remember=form.remember.data)
            target = safe_next(request.args.get("next")) or url_for("main.home")
            return _unlocked_redirect(unlocked.user_key, target)
    return render_form("auth/login.html", form)


@bp.route("/unlock", methods=["GET", "POST"])
@login_required
@password_checks(signed_in_email)
def unlock():
    form = UnlockForm()
    if form.validate_on_submit():
        try:
            unlocked = accounts.authenticate(
                email=current_user.email, password=form.password.data, kdf=keys.kdf()
            )
        except InvalidCredentials:
            form.password.errors.append(_("That password does not match."))
        else:
            # The same login, unlocked again: only a new key session is opened.
            target = safe_next(request.args.get("next")) or url_for("main.home")
            return _unlocked_redirect(unlocked.user_key, target)
    reason = UNLOCK_REASONS.get(request.args.get("why", ""), UNLOCK_DEFAULT)
    return render_form("auth/unlock.html", form, reason=reason)


# Why the unlock page appears, said on it (?why=): nothing is wrong, the notes closed themselves.
UNLOCK_REASONS = {
    "lock": _l("You locked your notes. Your login stays; enter your password to open them again."),
    "idle": _l(
        "Your notes locked themselves after a quiet while, so nobody else can open them on "
        "this device. Enter your password to open them again."
    ),
}
UNLOCK_DEFAULT = _l(
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
    # Said in the account's language, which the sign-in page after it keeps on this browser
    # (the user is loaded first: the language is chosen from a user already loaded).
    language = i18n.current() if current_user.is_authenticated else None
    said = _("You are signed out.")
    keysessions.close_session(cookie_value=request.cookies.get(keysessions.COOKIE_NAME))
    logins.sign_out()
    response = make_response(redirect(url_for("auth.login")))
    keys.clear_cookie(response)
    if language and language != i18n.visitor_language():
        keep_on_browser(response, language)
    flash(said)
    return response
