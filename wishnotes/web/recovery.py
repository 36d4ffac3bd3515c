"""The recovery kit: shown once, confirmed by typing one group back."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import accounts, crypto, keysessions
from wishnotes.clock import now
from wishnotes.errors import InvalidCredentials, InvalidInput
from wishnotes.models import User
from wishnotes.web import keys
from wishnotes.web.forms import (
    ActionForm,
    PasswordConfirmForm,
    RecoveryConfirmForm,
)
from wishnotes.web.limits import password_checks, signed_in_email
from wishnotes.web.navigation import form_error, render_form, safe_next

bp = Blueprint("recovery", __name__, url_prefix="/recovery-kit")


def show_kit(
    recovery_key: bytes, *, user: User, key_cookie: str, next_url: str | None = None
) -> str:
    """Render the recovery kit, shown once, and keep what its check needs in the key session."""
    check = accounts.kit_check(user=user, recovery_key=recovery_key)
    keysessions.keep_kit_check(cookie_value=key_cookie, user=user, check=check.to_bytes())
    form = RecoveryConfirmForm(next=next_url or "")
    return render_template(
        "auth/recovery_kit.html",
        **_kit_page(form, check.index, groups=crypto.recovery_key_groups(recovery_key)),
    )


def _kit_page(form: RecoveryConfirmForm, index: int, groups: list[str] | None = None) -> dict:
    form.typed.label.text = _("To check you saved it, type group %(num)d", num=index + 1)
    # The page that shows the key offers it as a file too: a link to the same words, so the
    # key never travels back to the server to be downloaded.
    kit_file = render_template("auth/recovery_kit.txt", groups=groups) if groups else None
    return {"groups": groups, "form": form, "kit_file": kit_file}


# Pages a signed-in user may see before the recovery kit is confirmed.
_OPEN_BEFORE_KIT = {
    "static",
    "main.healthz",
    "auth.logout",
    "auth.unlock",
    "auth.lock",
    "support.index",
    "pwa.service_worker",
    "pwa.offline",
    "pwa.manifest",
    "idle.status",
    "idle.still_here",
}


@bp.before_app_request
def require_saved_kit():
    """Send a new account to its recovery kit until one group was typed back."""
    # The endpoint first: the open pages (the health check above all) never load the user.
    if (
        request.endpoint not in _OPEN_BEFORE_KIT
        and request.blueprint != "recovery"
        and current_user.is_authenticated
        and current_user.recovery_confirmed_at is None
    ):
        return redirect(url_for("recovery.kit"))
    return None


def _start_form():
    return ActionForm() if current_user.recovery_confirmed_at is None else PasswordConfirmForm()


@bp.get("/")
@login_required
def kit():
    return render_template("auth/recovery_start.html", form=_start_form())


@bp.post("/new")
@login_required
@password_checks(signed_in_email, exempt_when=lambda: current_user.recovery_confirmed_at is None)
def new():
    confirmed = current_user.recovery_confirmed_at is not None
    form = _start_form()
    if not form.validate_on_submit():
        return render_form("auth/recovery_start.html", form)
    if confirmed:
        # Replacing a saved kit needs the password, not just an open session.
        try:
            unlocked = accounts.authenticate(
                email=current_user.email,
                password=form.password.data,
                kdf=keys.kdf(),
            )
        except InvalidCredentials:
            form.password.errors.append(_("That password does not match."))
            return render_form("auth/recovery_start.html", form)
        user_key = unlocked.user_key
    else:
        user_key = keys.user_key()
    recovery_key = accounts.new_recovery_key(
        user=current_user, user_key=user_key, pepper=current_app.config["PEPPER_BYTES"]
    )
    cookie = request.cookies.get(keysessions.COOKIE_NAME)
    if not keys.is_unlocked():
        # The password was just typed: unlock this browser, whose key session keeps the check.
        cookie = keys.open_session(user_key)
    response = make_response(show_kit(recovery_key, user=current_user, key_cookie=cookie))
    keys.set_cookie(response, cookie)
    return response


@bp.post("/confirm")
@login_required
def confirm():
    form = RecoveryConfirmForm()
    cookie = request.cookies.get(keysessions.COOKIE_NAME)
    kept = keysessions.kit_check(cookie_value=cookie, user=current_user)
    check = accounts.KitCheck.from_bytes(kept) if kept else None
    if check is None:
        flash(_("This recovery kit is no longer valid. Please make a new one."))
        return redirect(url_for("recovery.kit"))
    if form.validate_on_submit():
        try:
            accounts.confirm_recovery_kit(
                user=current_user, check=check, typed=form.typed.data, now=now()
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            keysessions.keep_kit_check(cookie_value=cookie, user=current_user, check=None)
            flash(_("Your recovery kit is saved. Keep it somewhere safe and private."))
            return redirect(safe_next(form.next.data) or url_for("main.home"))
    return render_template("auth/recovery_kit.html", **_kit_page(form, check.index)), 422
