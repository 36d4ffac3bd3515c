"""Account settings."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from wishnotes import pairing
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
    )
