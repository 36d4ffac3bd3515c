"""Account settings that need the password or the keys: password, deletion, safety number."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import accounts, keyring, keysessions
from wishnotes.clock import now
from wishnotes.errors import InvalidInput, KeyChanged, Locked, NotPaired
from wishnotes.web import keys, logins
from wishnotes.web.forms import ChangePasswordForm, DeleteAccountForm, TrustKeysForm
from wishnotes.web.limits import password_checks, signed_in_email
from wishnotes.web.navigation import form_error, render_form

bp = Blueprint("account", __name__, url_prefix="/settings")


@bp.route("/password", methods=["GET", "POST"])
@login_required
@password_checks(signed_in_email)
def password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(
                user=current_user._get_current_object(),
                current_password=form.current_password.data,
                new_password=form.new_password.data,
                kdf=keys.kdf(),
                keep_login_id=logins.current_id(),
                keep_key_session=request.cookies.get(keysessions.COOKIE_NAME),
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            flash(_("Your password is changed. Any other devices have been signed out."))
            return redirect(url_for("settings.index"))
    return render_form("account/password.html", form)


@bp.route("/delete", methods=["GET", "POST"])
@login_required
@password_checks(signed_in_email)
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
            logins.sign_out()  # the row went with the account; this forgets the cookies
            response = redirect(url_for("main.home"))
            keys.clear_cookie(response)
            flash(_("Your account and every note in it are deleted. Take good care of yourself."))
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
            flash(_("Your partner's current key is the one you trust now."))
            return redirect(url_for("account.safety_number"))
        safety = _safety()
    except NotPaired as exc:
        flash(exc.message)
        return redirect(url_for("pairing.index"))
    except Locked:
        return redirect(url_for("auth.unlock", next=url_for("account.safety_number")))
    return render_form("account/safety_number.html", form, safety=safety)
