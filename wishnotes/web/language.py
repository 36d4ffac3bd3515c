"""Choosing the language of the pages: stored with the account, or on this browser before it."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, url_for
from flask_login import current_user

from wishnotes import i18n, preferences
from wishnotes.errors import InvalidInput
from wishnotes.web.forms import LanguageForm
from wishnotes.web.navigation import safe_next

bp = Blueprint("language", __name__)


@bp.post("/language")
def choose():
    form = LanguageForm()
    if not form.validate_on_submit():
        abort(400)
    code = form.language.data
    if current_user.is_authenticated:
        try:
            preferences.set_language(user=current_user, code=code)
        except InvalidInput:
            abort(400)
    elif i18n.normalize(code) != code:
        abort(400)
    response = redirect(safe_next(form.next.data) or url_for("main.home"))
    # Kept on this browser too, so the sign-in page after signing out stays in it.
    keep_on_browser(response, code)
    return response


def keep_on_browser(response, code: str) -> None:
    """Remember a language on this browser (the `wn_lang` cookie) for the pages before sign-in."""
    response.set_cookie(
        i18n.COOKIE_NAME,
        code,
        max_age=i18n.COOKIE_MAX_AGE,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
