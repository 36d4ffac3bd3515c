"""Together: the page that leads to the practices, what is new in them, and their error pages."""

from __future__ import annotations

from datetime import date, datetime

from babel.dates import format_date
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from wishnotes import i18n, pairing, timezones, together
from wishnotes.clock import now
from wishnotes.errors import DecryptionFailed, KeyChanged, NotPaired, PracticeNotFound
from wishnotes.i18n import _l
from wishnotes.web.errors import render_error

bp = Blueprint("together", __name__, url_prefix="/together")

UNREADABLE = _l("This could not be opened, so nothing of it is shown. It may have been changed.")


@bp.app_template_global()
def together_news() -> list[together.News]:
    """What the partner did in the practices since the user last looked (for the home page)."""
    if not current_user.is_authenticated or current_user.pair_id is None:
        return []
    return together.news(user=current_user, partner=pairing.partner_of(current_user))


@bp.app_template_filter("day")
def day(value: date | datetime) -> str:
    """Return a day as people say it: "14 March" ("14 марта"), with the year when not this one."""
    shown = (
        value.astimezone(timezones.zone(current_user.timezone)).date()
        if isinstance(value, datetime)
        else value
    )
    this_year = timezones.local_date(now(), current_user.timezone).year
    pattern = "d MMMM" if shown.year == this_year else "d MMMM y"
    return format_date(shown, pattern, locale=i18n.current())


def practice_errors(practice_bp: Blueprint) -> None:
    """Give a practice's blueprint the calm answers to its services' errors."""

    @practice_bp.errorhandler(PracticeNotFound)
    def _not_found(exc: PracticeNotFound):
        return render_error(404, str(exc.message))

    @practice_bp.errorhandler(NotPaired)
    def _not_paired(exc: NotPaired):
        flash(str(exc.message))
        return redirect(url_for("pairing.index"))

    @practice_bp.errorhandler(KeyChanged)
    def _key_changed(exc: KeyChanged):
        page = render_template(
            "notes/problem.html",
            title=_("Your partner's key has changed"),
            message=str(exc.message),
            key=True,
        )
        return page, 409

    @practice_bp.errorhandler(DecryptionFailed)
    def _unreadable(exc: DecryptionFailed):
        return render_error(422, str(UNREADABLE))


def locked_with_words(words: str | None, back: str):
    """The page for a write whose keys locked meanwhile: the words handed back, and the way on."""
    return render_template("together/locked.html", words=words or "", back=back), 401


def seen(practice: str) -> None:
    """Note that the user looked at a practice now, so home stops calling it new."""
    together.mark_seen(user=current_user, practice=practice, now=now())


@bp.get("/")
@login_required
def index():
    if current_user.pair_id is None:
        flash(str(NotPaired.message))
        return redirect(url_for("pairing.index"))
    return render_template("together/index.html")
