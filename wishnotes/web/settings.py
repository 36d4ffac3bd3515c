"""Account settings."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from wishnotes import logins, pairing
from wishnotes.clock import now
from wishnotes.web import logins as this_login
from wishnotes.web.forms import ActionForm, PasswordConfirmForm

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.get("/")
@login_required
def index():
    return render_template(
        "settings/index.html",
        partner=pairing.partner_of(current_user),
        recovery_form=PasswordConfirmForm(),
        form=ActionForm(),
        devices=logins.of_user(user=current_user, now=now()),
        this_login_id=this_login.current_id(),
        today=now().date(),
    )
