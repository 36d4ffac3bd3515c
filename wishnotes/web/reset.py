"""Forgot password: ask for a link, then recover with the recovery key or start afresh."""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import outbox, recovery
from wishnotes.clock import now
from wishnotes.errors import InvalidInput, ResetLinkInvalid
from wishnotes.extensions import db, limiter
from wishnotes.web import keys, logins
from wishnotes.web.forms import ForgotForm, FreshStartForm, ResetWithKeyForm, RestoreForm
from wishnotes.web.limits import password_checks, reset_link_email, signed_in_email
from wishnotes.web.navigation import config_limit, form_error, render_form
from wishnotes.web.recovery import show_kit

bp = Blueprint("reset", __name__)


_recovery_limit = config_limit("RECOVERY_LIMIT_PER_ADDRESS")


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(_recovery_limit, methods=["POST"])
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        found = recovery.request_reset(email=form.email.data, now=now())
        if found:
            user, request_id = found
            outbox.queue_password_reset(user=user, request_id=request_id, now=now())
            db.session.commit()
        # The same answer whether or not the account exists.
        return render_template("reset/sent.html")
    return render_form("reset/forgot.html", form)


def _finish(recovered: recovery.Recovered):
    """Sign the user in on this device and show the new recovery kit once."""
    logins.sign_in(recovered.user)
    cookie = keys.open_session(recovered.user_key)
    response = make_response(
        show_kit(recovered.recovery_key, user=recovered.user, key_cookie=cookie)
    )
    keys.set_cookie(response, cookie)
    return response


def _reset_page(token: str, form, template: str, reset):
    """Show a reset form for a live link; on a valid submit run `reset()` and show the new kit."""
    try:
        recovery.find_reset(token=token, now=now())
    except ResetLinkInvalid as exc:
        return render_template("reset/invalid.html", message=exc.message), 404
    if form.validate_on_submit():
        try:
            return _finish(reset())
        except ResetLinkInvalid as exc:  # used up between the page and the submit
            return render_template("reset/invalid.html", message=exc.message), 409
        except InvalidInput as exc:
            form_error(form, exc)
    return render_form(template, form, token=token)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_recovery_limit, methods=["POST"])
@password_checks(reset_link_email)
def with_key(token: str):
    form = ResetWithKeyForm()
    return _reset_page(
        token,
        form,
        "reset/with_key.html",
        lambda: recovery.recover_with_key(
            token=token,
            recovery_key_text=form.recovery_key.data,
            new_password=form.password.data,
            kdf=keys.kdf(),
            now=now(),
        ),
    )


@bp.route("/reset/<token>/fresh", methods=["GET", "POST"])
@limiter.limit(_recovery_limit, methods=["POST"])
def fresh(token: str):
    form = FreshStartForm()
    return _reset_page(
        token,
        form,
        "reset/fresh.html",
        lambda: recovery.reset_with_fresh_keys(
            token=token,
            new_password=form.password.data,
            understood=form.understood.data,
            kdf=keys.kdf(),
            now=now(),
        ),
    )


@bp.route("/settings/earlier-notes", methods=["GET", "POST"])
@login_required
@limiter.limit(_recovery_limit, methods=["POST"])
@password_checks(signed_in_email)
def restore():
    form = RestoreForm()
    if form.validate_on_submit():
        try:
            opened = recovery.restore_retired(
                user=current_user,
                user_key=keys.user_key(),
                secret=form.secret.data,
                kdf=keys.kdf(),
                now=now(),
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            flash(_("Your earlier notes are open again.") if opened else _("Nothing changed."))
            return redirect(url_for("settings.index"))
    locked = recovery.locked_retired(current_user)
    return render_form("reset/restore.html", form, locked=locked)
