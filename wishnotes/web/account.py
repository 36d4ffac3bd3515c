"""Account settings that need the password or the keys: password, deletion, safety number."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from wishnotes import accounts, keyring, keysessions
from wishnotes.clock import now
from wishnotes.errors import InvalidInput, KeyChanged, Locked, NotPaired
from wishnotes.extensions import limiter
from wishnotes.web import keys
from wishnotes.web.forms import ChangePasswordForm, DeleteAccountForm, TrustKeysForm
from wishnotes.web.navigation import config_limit, form_error, render_form

bp = Blueprint("account", __name__, url_prefix="/settings")


def _account_key() -> str:
    return f"password-check:{current_user.get_id()}"


def password_checks(exempt_when=None):
    """Rate-limit a form that checks the password, like login: per address and per account.

    The buckets are shared by every such form, so together they give a guesser no more tries.
    """

    def decorate(view):
        view = limiter.shared_limit(
            config_limit("LOGIN_LIMIT_PER_ACCOUNT"),
            scope="password-check-account",
            key_func=_account_key,
            methods=["POST"],
            exempt_when=exempt_when,
        )(view)
        return limiter.shared_limit(
            config_limit("LOGIN_LIMIT_PER_ADDRESS"),
            scope="password-check-address",
            methods=["POST"],
            exempt_when=exempt_when,
        )(view)

    return decorate


@bp.route("/password", methods=["GET", "POST"])
@login_required
@password_checks()
def password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(
                user=current_user._get_current_object(),
                current_password=form.current_password.data,
                new_password=form.new_password.data,
                kdf=keys.kdf(),
                keep_key_session=request.cookies.get(keysessions.COOKIE_NAME),
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            # The login id carries the session version, so this browser signs in again.
            remembered = current_app.config["REMEMBER_COOKIE_NAME"] in request.cookies
            login_user(current_user._get_current_object(), remember=remembered)
            flash("Your password is changed. Any other devices have been signed out.")
            return redirect(url_for("settings.index"))
    return render_form("account/password.html", form)


@bp.route("/delete", methods=["GET", "POST"])
@login_required
@password_checks()
def delete():
    form = DeleteAccountForm()
    if form.validate_on_submit():
        try:
            accounts.delete_account(
                user=current_user._get_current_object(),
                password=form.password.data,
                kdf=keys.kdf(),
                now=now(),
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            logout_user()
            response = redirect(url_for("main.home"))
            keys.clear_cookie(response)
            flash("Your account and every note in it are deleted. Take good care of yourself.")
            return response
    return render_form("account/delete.html", form)


@bp.after_app_request
def keep_keyring_mark(response):
    """Give the browser a mark of the newest keyring it has seen (see keys.user_key)."""
    return keys.refresh_keyring_mark(response)


def _safety():
    """Return the safety number of the current user, telling whether the keyring was put back."""
    user_key = keys.user_key(allow_rollback=True)
    try:
        keyring.check_mark(user=current_user, user_key=user_key, mark=keys.keyring_mark())
    except KeyChanged:
        return keyring.safety(user=current_user, user_key=user_key, now=now(), rolled_back=True)
    return keyring.safety(user=current_user, user_key=user_key, now=now())


@bp.get("/safety-number")
@login_required
def safety_number():
    try:
        safety = _safety()
    except NotPaired as exc:
        flash(exc.message)
        return redirect(url_for("pairing.index"))
    return render_template("account/safety_number.html", safety=safety, form=TrustKeysForm())


@bp.post("/safety-number/trust")
@login_required
def trust():
    form = TrustKeysForm()
    try:
        if form.validate_on_submit():
            user_key = keys.user_key(allow_rollback=True)
            keyring.trust_partner(user=current_user, user_key=user_key, now=now())
            flash("Your partner's current key is the one you trust now.")
            return redirect(url_for("account.safety_number"))
        safety = _safety()
    except NotPaired as exc:
        flash(exc.message)
        return redirect(url_for("pairing.index"))
    except Locked:
        return redirect(url_for("auth.unlock", next=url_for("account.safety_number")))
    return render_form("account/safety_number.html", form, safety=safety)
