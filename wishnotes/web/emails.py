"""Email settings, and the one-click unsubscribe links in every reminder (RFC 8058)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import preferences, timezones
from wishnotes.errors import InvalidInput, UnsubscribeLinkInvalid
from wishnotes.extensions import csrf
from wishnotes.i18n import _l
from wishnotes.web.forms import EmailSettingsForm
from wishnotes.web.localtime import zone_label
from wishnotes.web.navigation import form_error, render_form

bp = Blueprint("emails", __name__)

ONE_CLICK = "One-Click"
# The weekly email as it stands, one whole sentence per weekday (Monday first), so each
# language can say "on Mondays" its own way; filled with the time and the zone.
WEEKLY_NOW = (
    _l("Now: a weekly summary on Mondays at %(time)s, %(zone)s."),
    _l("Now: a weekly summary on Tuesdays at %(time)s, %(zone)s."),
    _l("Now: a weekly summary on Wednesdays at %(time)s, %(zone)s."),
    _l("Now: a weekly summary on Thursdays at %(time)s, %(zone)s."),
    _l("Now: a weekly summary on Fridays at %(time)s, %(zone)s."),
    _l("Now: a weekly summary on Saturdays at %(time)s, %(zone)s."),
    _l("Now: a weekly summary on Sundays at %(time)s, %(zone)s."),
)


def _zone_choices(form: EmailSettingsForm) -> None:
    """Offer every zone in one menu, grouped by region, so choosing one is a single step."""
    chosen = form.timezone.data or current_user.timezone
    groups = {
        str(timezones.REGION_NAMES.get(region, region)): [(name, name) for name in zones]
        for region, zones in timezones.by_region().items()
    }
    if chosen not in timezones.offered():
        groups = {_("Yours"): [(chosen, chosen)], **groups}  # a legacy name such as "US/Eastern"
    form.timezone.choices = {"": [(timezones.DEFAULT, timezones.DEFAULT)], **groups}
    offer = "prefer" if current_user.timezone == timezones.DEFAULT else "offer"
    form.timezone.render_kw = {"data-offer-browser-zone": offer}


@bp.route("/settings/emails", methods=["GET", "POST"])
@login_required
def settings():
    form = EmailSettingsForm(obj=None if request.method == "POST" else current_user)
    _zone_choices(form)
    if form.validate_on_submit():
        fields = preferences.EmailSettings.__dataclass_fields__
        try:
            preferences.update_settings(
                user=current_user,
                settings=preferences.EmailSettings(**{name: form[name].data for name in fields}),
            )
        except InvalidInput as exc:
            form_error(form, exc)
        else:
            flash(_("Your email settings are saved."))
            return redirect(url_for("emails.settings"))
    return render_form("emails/settings.html", form, weekly_now=WEEKLY_NOW, zone_label=zone_label)


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str):
    """Ask before unsubscribing: mail scanners follow links, and a GET must change nothing."""
    try:
        _, kind = preferences.read_unsubscribe_token(token, secret_key=_secret())
    except UnsubscribeLinkInvalid as exc:
        return render_template("emails/unsubscribe_invalid.html", message=exc.message), 404
    return render_template(
        "emails/unsubscribe.html", token=token, what=preferences.KIND_NAMES[kind]
    )


@bp.post("/unsubscribe/<token>")
@csrf.exempt  # a mail provider posts this with no session; the signed token is the proof
def unsubscribe(token: str):
    if request.form.get("List-Unsubscribe") != ONE_CLICK:
        message = _("This link needs the button on its page.")
        return render_template("emails/unsubscribe_invalid.html", message=message), 400
    try:
        kind = preferences.unsubscribe(token=token, secret_key=_secret())
    except UnsubscribeLinkInvalid as exc:
        return render_template("emails/unsubscribe_invalid.html", message=exc.message), 404
    return render_template("emails/unsubscribed.html", what=preferences.KIND_NAMES[kind])


def _secret() -> str:
    return current_app.config["SECRET_KEY"]
