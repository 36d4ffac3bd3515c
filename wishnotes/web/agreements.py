"""Agreements: propose, accept, end without a reason, and the listening timer."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from wtforms import SelectChoice

from wishnotes import agreements, pairing, program, timezones, together
from wishnotes.clock import now
from wishnotes.errors import AgreementSettled, InvalidInput, Locked, NotPaired
from wishnotes.web import keys
from wishnotes.web.forms import ActionForm, AgreementForm, ListenForm
from wishnotes.web.navigation import form_error, render_form
from wishnotes.web.together import locked_with_words, practice_errors, seen

bp = Blueprint("agreements", __name__, url_prefix="/together/agreements")
practice_errors(bp)

OWN_WORDS = "own"


@bp.get("/")
@login_required
def index():
    items = agreements.listing(user=current_user, user_key=keys.user_key(), now=now())
    seen(together.AGREEMENTS)
    return render_template("together/agreements.html", items=items, form=ActionForm())


@bp.route("/new", methods=["GET", "POST"])
@login_required
def propose():
    if current_user.pair_id is None:
        raise NotPaired()
    form = _agreement_form()
    if form.validate_on_submit():
        chosen = form.shipped.data if form.shipped.data != OWN_WORDS else None
        try:
            agreement = agreements.propose(
                user=current_user,
                user_key=keys.user_key(),
                shipped_key=chosen,
                text=form.text.data,
                starts_on=form.starts_on.data,
                ends_on=form.ends_on.data,
                now=now(),
                submission_key=form.submission_key.data,
            )
        except InvalidInput as exc:
            form_error(form, exc)
        except Locked:
            return locked_with_words(form.text.data, url_for("agreements.propose"))
        else:
            flash(_("Your proposal is waiting for your partner. Until then it reads “proposed”."))
            return redirect(url_for("agreements.index", _anchor=f"agreement-{agreement.id}"))
    texts = {item.key: item for item in agreements.shipped()}
    return render_form("together/propose.html", form, texts=texts)


@bp.post("/<agreement_id>/accept")
@login_required
def accept(agreement_id: str):
    if ActionForm().validate_on_submit():
        try:
            agreements.accept(user=current_user, agreement_id=agreement_id, now=now())
        except AgreementSettled as exc:
            flash(str(exc.message))
        else:
            flash(_("You have agreed. It holds from its first day."))
    return redirect(url_for("agreements.index"))


@bp.post("/<agreement_id>/end")
@login_required
def end(agreement_id: str):
    if ActionForm().validate_on_submit():
        agreements.end(user=current_user, agreement_id=agreement_id, now=now())
        flash(_("It has ended. No reason is needed."))
    return redirect(url_for("agreements.index"))


@bp.get("/listen")
@login_required
def listen():
    """The listening timer: everything comes from the address and nothing is stored."""
    partner = pairing.partner_of(current_user)
    if partner is None:
        raise NotPaired()
    form = ListenForm(request.args, minutes="10", speaker="me")
    form.speaker.choices = [
        SelectChoice("me", _("Me")),
        SelectChoice("partner", partner.display_name),
    ]
    if not (request.args and form.validate()):
        return render_template("together/listen.html", form=form, partner=partner, timer=None)
    minutes = int(form.minutes.data)
    me_first = form.speaker.data == "me"
    speaker, listener = (current_user, partner) if me_first else (partner, current_user)
    local = now().astimezone(timezones.zone(current_user.timezone))
    timer = {
        "minutes": minutes,
        "speaker": speaker,
        "listener": listener,
        "until": local + timedelta(minutes=minutes),
    }
    return render_template("together/listen.html", form=form, partner=partner, timer=timer)


def _agreement_form() -> AgreementForm:
    form = AgreementForm()
    form.shipped.choices = [SelectChoice(item.key, item.title) for item in agreements.shipped()] + [
        SelectChoice(OWN_WORDS, _("Something in my own words"))
    ]
    if not form.is_submitted():
        form.shipped.data = request.args.get("shipped") or OWN_WORDS
        form.starts_on.data = timezones.local_date(now(), current_user.timezone)
        found = program.find_starter(
            prompt_key=request.args.get("prompt"), index=request.args.get("starter", "")
        )
        if found is not None:
            form.text.data = found[1].rstrip("…").rstrip() + " "
    return form
