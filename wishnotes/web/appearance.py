"""Settings for how the app looks: discreet or named, notes blurred until tapped."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import appearance
from wishnotes.errors import InvalidInput
from wishnotes.web.forms import AppearanceForm
from wishnotes.web.navigation import form_error, render_form

bp = Blueprint("appearance", __name__, url_prefix="/settings/appearance")


def _form() -> AppearanceForm:
    form = AppearanceForm(app_look=current_user.app_look, blur_notes=current_user.blur_notes)
    form.app_look.choices = [
        (look.key, _("%(label)s: %(description)s", label=look.label, description=look.description))
        for look in appearance.LOOKS.values()
    ]
    return form


@bp.route("/", methods=["GET", "POST"])
@login_required
def edit():
    form = _form()
    if form.validate_on_submit():
        try:
            appearance.set_appearance(
                user=current_user, blur_notes=form.blur_notes.data, app_look=form.app_look.data
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            flash(_("Saved. A phone may take a day to show a new icon; reinstalling is quicker."))
            return redirect(url_for("appearance.edit"))
    return render_form("appearance/edit.html", form, looks=appearance.LOOKS)
