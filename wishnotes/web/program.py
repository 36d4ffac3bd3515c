"""The week: today's prompt, start, pause, resume, finish, and the weeks before."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from wtforms import SelectChoice

from wishnotes import pairing, program, timezones
from wishnotes.clock import now
from wishnotes.errors import InvalidInput, WishnotesError
from wishnotes.web.forms import ActionForm, StartWeekForm
from wishnotes.web.navigation import form_error, render_form

bp = Blueprint("program", __name__, url_prefix="/week")

# Starters link to the compose page as ?prompt=<key>&starter=<index>, or to the practice the
# prompt names (the rituals week opens the table, with the starter in its "I miss…" field).
COMPOSE_ENDPOINT = "notes.compose"
PRACTICE_ENDPOINTS = {
    "table": "rituals.table",
    "place": "places.current",
    "agreements": "agreements.propose",
}


@bp.app_template_global()
def todays_prompt():
    """Today's prompt of the signed-in user's week, for any page that shows it."""
    if not current_user.is_authenticated:
        return None
    return program.todays_prompt(pair=current_user.pair, now=now())


@bp.app_template_global()
def starter_url(prompt, index: int) -> str | None:
    """Where a starter leads: the compose page, or the prompt's practice, with it filled in."""
    endpoint = PRACTICE_ENDPOINTS.get(prompt.practice, COMPOSE_ENDPOINT)
    return url_for(endpoint, prompt=prompt.key, starter=index)


def _start_form() -> StartWeekForm:
    form = StartWeekForm()
    # The week runs in one partner's time zone; the script also offers this phone's zone.
    partner = pairing.partner_of(current_user)
    zones = sorted({current_user.timezone, *([partner.timezone] if partner else [])})
    if form.timezone.data and form.timezone.data not in zones:
        zones.append(form.timezone.data)  # the browser's zone, sent back after an error
    form.timezone.choices = [SelectChoice(name, name.replace("_", " ")) for name in zones]
    # Someone who never chose a zone gets this device's as the default; others see it offered.
    offer = "prefer" if current_user.timezone == timezones.DEFAULT else "offer"
    form.timezone.render_kw = {"data-offer-browser-zone": offer}
    if not form.is_submitted():
        form.theme.data = program.suggested_theme(pair=current_user.pair).key
        form.timezone.data = current_user.timezone
        form.start_date.data = timezones.local_date(now(), current_user.timezone)
    return form


def _page(form: StartWeekForm | None = None):
    current = program.status(pair=current_user.pair, now=now())
    partner = pairing.partner_of(current_user)
    return render_form(
        "program/index.html",
        form or _start_form(),
        current=current,
        action_form=ActionForm(),
        paired=partner is not None,
        partner_name=partner.display_name if partner else "",
        suggested=program.suggested_theme(pair=current_user.pair),
        has_past=bool(program.past_weeks(pair=current_user.pair)),
    )


@bp.get("/")
@login_required
def index():
    return _page()


@bp.post("/start")
@login_required
def start():
    form = _start_form()
    if form.validate_on_submit():
        try:
            program.start_week(
                user=current_user,
                theme_key=form.theme.data,
                start_date=form.start_date.data,
                timezone=form.timezone.data,
                now=now(),
                submission_key=form.submission_key.data,
            )
        except InvalidInput as exc:
            form_error(form, exc)
        except WishnotesError as exc:
            form.form_errors.append(exc.message)
        else:
            flash(_("Your week is suggested. It begins once your partner says yes."))
            return redirect(url_for("program.index"))
    return _page(form)


def _act(service, done: str):
    if ActionForm().validate_on_submit():
        try:
            service(user=current_user, now=now())
        except WishnotesError as exc:
            flash(exc.message)
        else:
            flash(done)
    return redirect(url_for("program.index"))


@bp.post("/accept")
@login_required
def accept():
    return _act(program.accept_week, _("Your week is set. Take it one day at a time."))


@bp.post("/pause")
@login_required
def pause():
    return _act(program.pause_week, _("The week is paused. Take the time you need."))


@bp.post("/resume")
@login_required
def resume():
    return _act(program.resume_week, _("The week goes on where it stopped."))


@bp.post("/finish")
@login_required
def finish():
    return _act(program.finish_week, _("Done. A new week can start whenever you both like."))


@bp.get("/past")
@login_required
def past():
    weeks = program.past_weeks(pair=current_user.pair)
    return render_template("program/past.html", weeks=weeks, title_of=program.theme_title)
