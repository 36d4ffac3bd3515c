"""Invite a partner, join by link, end the pair."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import pairing
from wishnotes.clock import now
from wishnotes.errors import AlreadyPaired, InviteInvalid, Locked, NotPaired, SelfInvite
from wishnotes.web import keys
from wishnotes.web.forms import ActionForm, InviteForm, UnpairChoiceForm
from wishnotes.web.navigation import render_form

bp = Blueprint("pairing", __name__, url_prefix="/pair")


@bp.app_context_processor
def pairing_context() -> dict:
    """Let templates ask, only where they need it, whether the user's pair has ended."""

    def pair_ended() -> bool:
        return current_user.is_authenticated and pairing.ended_pair(current_user) is not None

    def had_past_pair() -> bool:
        return current_user.is_authenticated and pairing.had_past_pair(current_user)

    def former_partner_name() -> str | None:
        ended = pairing.ended_pair(current_user) if current_user.is_authenticated else None
        former = pairing.former_partner(current_user, ended) if ended else None
        return former.display_name if former else None

    return {
        "pair_ended": pair_ended,
        "had_past_pair": had_past_pair,
        "former_partner_name": former_partner_name,
    }


@bp.get("/")
@login_required
def index():
    partner = pairing.partner_of(current_user)
    invite = None if partner else pairing.live_invite(user=current_user, now=now())
    return render_template(
        "pairing/index.html",
        partner=partner,
        invite=invite,
        form=ActionForm(),
        invite_form=InviteForm(),
    )


@bp.post("/invite")
@login_required
def create_invite():
    form = InviteForm()
    if not form.validate_on_submit():
        return redirect(url_for("pairing.index"))
    try:
        # The invite's secret is kept in the keyring, to check the joiner's keys later.
        token = pairing.create_invite(
            user=current_user,
            user_key=keys.user_key(),
            now=now(),
            submission_key=form.submission_key.data,
            secret=current_app.config["SECRET_KEY"].encode("utf-8"),
        )
    except AlreadyPaired as exc:
        flash(exc.message)
        return redirect(url_for("pairing.index"))
    except Locked:
        return redirect(url_for("auth.unlock", next=url_for("pairing.index")))
    # The token is shown once, in this response; only its hash is stored.
    link = url_for("pairing.join", token=token, _external=True)
    return render_template("pairing/invite.html", link=link, form=ActionForm())


@bp.post("/invite/revoke")
@login_required
def revoke_invite():
    if ActionForm().validate_on_submit() and pairing.revoke_invite(user=current_user, now=now()):
        flash(_("The invite link was withdrawn. It no longer works."))
    return redirect(url_for("pairing.index"))


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str):
    try:
        invite = pairing.find_invite(token=token, now=now())
    except InviteInvalid as exc:
        return render_template("pairing/join_invalid.html", message=exc.message), 404
    if not current_user.is_authenticated:
        return render_template("pairing/join_anonymous.html", inviter=invite.inviter, token=token)
    if invite.inviter_id == current_user.id:
        return render_template("pairing/join_invalid.html", message=SelfInvite.message), 409
    if current_user.pair_id is not None:
        return render_template("pairing/join_invalid.html", message=AlreadyPaired.message), 409
    form = ActionForm()
    if form.validate_on_submit():
        try:
            # Accepting needs the keys: the inviter's keys are checked with the link's secret
            # and pinned in the joiner's keyring.
            pairing.accept_invite(
                user=current_user, token=token, now=now(), user_key=keys.user_key()
            )
        except (InviteInvalid, AlreadyPaired) as exc:
            form.form_errors.append(exc.message)
        else:
            flash(_("You and %(name)s are now paired.", name=invite.inviter.display_name))
            return redirect(url_for("main.home"))
    return render_form("pairing/join.html", form, inviter=invite.inviter)


@bp.route("/unpair", methods=["GET", "POST"])
@login_required
def unpair():
    partner = pairing.partner_of(current_user)
    if partner is None:
        flash(NotPaired.message)
        return redirect(url_for("pairing.index"))
    form = UnpairChoiceForm()
    if form.validate_on_submit():
        if form.delete_my_notes.data or form.delete_my_practices.data:
            keys.user_key()  # deleting what one wrote needs unlocked keys, not only a cookie
        try:
            pairing.unpair(
                user=current_user,
                now=now(),
                delete_my_notes=form.delete_my_notes.data,
                delete_my_practices=form.delete_my_practices.data,
            )
        except NotPaired:
            flash(_("Your pair has already ended."))
        else:
            flash(_("Your pair has ended. Take care of yourself."))
        return redirect(url_for("pairing.index"))
    return render_form("pairing/unpair.html", form, partner=partner)
