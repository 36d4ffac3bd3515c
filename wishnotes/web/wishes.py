"""Wish cards: answer alone, one card at a time or as a list; see only what both of you want."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import cards as wish_cards
from wishnotes import wishes
from wishnotes.clock import now
from wishnotes.errors import (
    CardNotFound,
    DecryptionFailed,
    InvalidInput,
    KeyChanged,
    NotPaired,
    TooManyChanges,
)
from wishnotes.i18n import _l
from wishnotes.web import keys
from wishnotes.web.errors import render_error
from wishnotes.web.forms import ActionForm, AnswerForm

bp = Blueprint("wishes", __name__, url_prefix="/wishes")

# Three answers of equal weight, in this order everywhere; "skip" is a link, not an answer.
CHOICES = {"yes": _l("Yes"), "maybe": _l("Maybe"), "no": _l("Not for me")}
CLOSED = _l(
    "The wish cards could not be opened, so nothing of them is shown. Something about them may "
    "have been changed outside the app."
)


@bp.errorhandler(NotPaired)
def _not_paired(exc: NotPaired):
    flash(_("Wish cards are for two. Once you are paired, you can start."))
    return redirect(url_for("pairing.index"))


@bp.errorhandler(CardNotFound)
def _no_card(exc: CardNotFound):
    return render_error(404, str(exc.message))


@bp.errorhandler(KeyChanged)
def _key_changed(exc: KeyChanged):
    page = render_template(
        "notes/problem.html",
        title=_("Your partner's key has changed"),
        message=str(exc.message),
        key=True,
    )
    return page, 409


@bp.errorhandler(DecryptionFailed)
def _closed(exc: DecryptionFailed):
    title = _("The cards stay closed")
    return render_template("notes/problem.html", title=title, message=str(CLOSED)), 422


@bp.get("/")
@login_required
def index():
    deck = wishes.open_deck(user=current_user, user_key=keys.user_key(), now=now())
    return render_template("wishes/index.html", deck=deck, form=ActionForm())


@bp.route("/cards/<card_key>", methods=["GET", "POST"])
@login_required
def card(card_key: str):
    form = AnswerForm()
    if form.validate_on_submit():
        try:
            deck = wishes.answer(
                user=current_user,
                user_key=keys.user_key(),
                card_key=card_key,
                choice=form.choice.data,
                now=now(),
            )
        except (InvalidInput, TooManyChanges) as exc:
            flash(str(exc.message))
            return redirect(url_for("wishes.card", card_key=card_key))
        return _to_next(deck, after=card_key)
    deck = wishes.open_deck(user=current_user, user_key=keys.user_key(), now=now())
    shown = next((c for c in deck.cards if c.key == card_key), None)
    if shown is None:
        raise CardNotFound()
    return render_template(
        "wishes/card.html",
        deck=deck,
        card=shown,
        form=form,
        choices=CHOICES,
        skip_to=deck.next_unanswered(after=card_key),
    )


@bp.get("/cards")
@login_required
def cards():
    deck = wishes.open_deck(user=current_user, user_key=keys.user_key(), now=now())
    # One theme at a time: the whole deck on one page would be heavy on a slow phone.
    themes = [t for t in wish_cards.deck().themes if deck.intimate_both or not t.intimate]
    theme = next((t for t in themes if t.key == request.args.get("theme")), themes[0])
    return render_template(
        "wishes/list.html", deck=deck, choices=CHOICES, themes=themes, theme=theme
    )


@bp.get("/both")
@login_required
def both():
    found = wishes.matches(user=current_user, user_key=keys.user_key(), now=now())
    return render_template("wishes/both.html", found=found)


@bp.post("/closer")
@login_required
def closer():
    if ActionForm().validate_on_submit():
        on = request.form.get("on") == "1"
        wishes.set_intimate(user=current_user, user_key=keys.user_key(), on=on, now=now())
        flash(
            _("The “Closer” cards are on for you. They appear once you have both turned them on.")
            if on
            else _("The “Closer” cards are off.")
        )
    return redirect(url_for("wishes.index"))


def _to_next(deck: wishes.Deck, *, after: str):
    following = deck.next_unanswered(after=after)
    if following is None:
        flash(_("That was the last card for now. You can change an answer from the list."))
        return redirect(url_for("wishes.index"))
    return redirect(url_for("wishes.card", card_key=following.key))
