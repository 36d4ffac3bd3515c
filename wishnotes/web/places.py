"""A place of our own: start a place, write in turns, end it, read the ones before."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import places, practice_texts, program, together
from wishnotes.clock import now
from wishnotes.errors import InvalidInput, Locked, NotYourTurn, PlaceEnded, PlaceOpen
from wishnotes.web import keys
from wishnotes.web.forms import ActionForm, PlaceStartForm, PlaceTurnForm
from wishnotes.web.navigation import form_error, render_form
from wishnotes.web.together import locked_with_words, practice_errors, seen

bp = Blueprint("places", __name__, url_prefix="/together/place")
practice_errors(bp)


@bp.get("/")
@login_required
def current():
    form = PlaceTurnForm()
    form.text.data = _starter_text()
    return _page(form)


@bp.post("/start")
@login_required
def start():
    form = PlaceStartForm()
    if form.validate_on_submit():
        try:
            place = places.start_place(
                user=current_user,
                user_key=keys.user_key(),
                name=form.name.data,
                now=now(),
                submission_key=form.submission_key.data,
            )
        except (InvalidInput, PlaceOpen) as exc:
            flash(str(exc.message))
        else:
            if place.ended_at is not None:  # an old form again: the place it began has ended
                return redirect(url_for("places.show", place_id=place.id))
            flash(_("Your place has begun. You write the first lines."))
    return redirect(url_for("places.current"))


@bp.post("/<place_id>/turn")
@login_required
def turn(place_id: str):
    form = PlaceTurnForm()
    if form.validate_on_submit():
        try:
            places.add_turn(
                user=current_user,
                user_key=keys.user_key(),
                place_id=place_id,
                text=form.text.data,
                now=now(),
                submission_key=form.submission_key.data,
            )
        except InvalidInput as exc:
            form_error(form, exc)
        except (NotYourTurn, PlaceEnded) as exc:
            form.form_errors.append(str(exc.message))
        except Locked:
            return locked_with_words(form.text.data, url_for("places.current"))
        else:
            return redirect(url_for("places.current", _anchor="latest"))
    return _page(form)


@bp.post("/<place_id>/end")
@login_required
def end(place_id: str):
    if ActionForm().validate_on_submit():
        places.end_place(user=current_user, place_id=place_id, now=now())
        flash(_("The place has ended. It stays here to read, and a new one can begin."))
    return redirect(url_for("places.current"))


@bp.get("/<place_id>")
@login_required
def show(place_id: str):
    opened = places.open_place(
        user=current_user, user_key=keys.user_key(), place_id=place_id, now=now()
    )
    if opened.place.ended_at is None:
        return redirect(url_for("places.current"))
    return render_template("together/place_ended.html", opened=opened)


def _page(form: PlaceTurnForm):
    opened = places.current(user=current_user, user_key=keys.user_key(), now=now())
    seen(together.PLACES)
    return render_form(
        "together/place.html",
        form,
        opened=opened,
        start_form=PlaceStartForm(formdata=None),
        end_form=ActionForm(formdata=None),
        ended=places.ended(user=current_user),
    )


def _starter_text() -> str | None:
    """A starter chosen by link (?starter=…), from this turn's or from a week prompt's."""
    chosen = request.args.get("starter", "")
    if request.args.get("prompt"):
        found = program.find_starter(prompt_key=request.args.get("prompt"), index=chosen)
        return None if found is None else found[1].rstrip("…").rstrip() + " "
    known = practice_texts.shipped().place_starters
    return chosen.rstrip("…").rstrip() + " " if chosen in known else None
