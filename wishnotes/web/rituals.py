"""The Table of Trust: the "I miss…" items, planned, done on dates, archived and restored."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import cards, program, rituals, timezones, together
from wishnotes.clock import now
from wishnotes.errors import InvalidInput, Locked
from wishnotes.extensions import db
from wishnotes.web import keys
from wishnotes.web.forms import ActionForm, RitualDayForm, RitualForm
from wishnotes.web.navigation import form_error, render_form
from wishnotes.web.together import day as say_day
from wishnotes.web.together import locked_with_words, practice_errors, seen

bp = Blueprint("rituals", __name__, url_prefix="/together/table")
practice_errors(bp)


@bp.get("/")
@login_required
def table():
    form = RitualForm()
    found = program.find_starter(
        prompt_key=request.args.get("prompt"), index=request.args.get("starter", "")
    )
    # Every item begins "I miss…"; a week prompt's starter may offer other words, and a shared
    # wish card ("Add to our Table of Trust") its own.
    form.text.data = found[1].rstrip("…").rstrip() + " " if found is not None else _("I miss") + " "
    if wish := cards.find(request.args.get("wish")):
        form.text.data = _("I miss %(wish)s", wish=wish.text[:1].lower() + wish.text[1:])
    return _page(form)


@bp.post("/")
@login_required
def add():
    form = RitualForm()
    if form.validate_on_submit():
        try:
            item = rituals.add_item(
                user=current_user,
                user_key=keys.user_key(),
                text=form.text.data,
                now=now(),
                submission_key=form.submission_key.data,
            )
        except InvalidInput as exc:
            form_error(form, exc)
        except Locked:
            return locked_with_words(form.text.data, url_for("rituals.table"))
        else:
            flash(_("It is on your table now."))
            return _back(item.id)
    return _page(form)


@bp.get("/archive")
@login_required
def archived():
    items = rituals.table(user=current_user, user_key=keys.user_key(), now=now(), archived=True)
    return render_form("together/archive.html", ActionForm(), items=items, today=_today())


@bp.post("/<item_id>/welcome")
@login_required
def welcome(item_id: str):
    _checked(ActionForm())
    rituals.welcome(user=current_user, item_id=item_id, now=now())
    flash(_("You said: let's bring it back."))
    return _back(item_id)


@bp.post("/<item_id>/plan")
@login_required
def plan(item_id: str):
    form = _checked(RitualDayForm())
    rituals.plan(user=current_user, item_id=item_id, day=form.day.data, now=now())
    flash(_("The day is planned.") if form.day.data else _("The plan is cleared."))
    return _back(item_id)


@bp.post("/<item_id>/done")
@login_required
def done(item_id: str):
    form = _checked(RitualDayForm())
    day = form.day.data or _today()
    rituals.mark_done(user=current_user, item_id=item_id, day=day, now=now())
    flash(_("Written down: done on %(day)s.", day=say_day(day)))
    return _back(item_id)


@bp.post("/<item_id>/archive")
@login_required
def archive(item_id: str):
    _checked(ActionForm())
    restore = request.form.get("restore") == "1"
    rituals.archive(user=current_user, item_id=item_id, now=now(), restore=restore)
    flash(_("It is back on the table.") if restore else _("It is in the archive now."))
    return redirect(url_for("rituals.archived" if not restore else "rituals.table"))


def _page(form: RitualForm):
    items = rituals.table(user=current_user, user_key=keys.user_key(), now=now())
    seen(together.RITUALS)
    return render_form("together/table.html", form, items=items, today=_today())


def _checked(form):
    """Return a submitted form whose token and fields are valid, else a calm 4xx."""
    if not form.validate_on_submit():
        raise InvalidInput(" ".join(str(e) for errors in form.errors.values() for e in errors))
    return form


def _back(item_id: str):
    return redirect(url_for("rituals.table", _anchor=f"item-{item_id}"))


def _today():
    return timezones.local_date(now(), current_user.timezone)


@bp.errorhandler(InvalidInput)
def _invalid(exc: InvalidInput):
    # A day out of range or a damaged form: the table again, with the reason above it.
    db.session.rollback()
    flash(str(exc.message) or _("Please check the day and try again."))
    body, _status = _page(RitualForm(formdata=None))
    return body, 422
