"""The languages Wishnotes speaks, and which one a page, an email or a data file is in.

Messages are gettext catalogs (Flask-Babel) in `wishnotes/translations/`; the texts shipped as
data (prompts, practices, wish cards) are one file per language with the same keys. A visitor's
language comes from a choice they made on this browser, else from `Accept-Language`; a
signed-in person's is stored with the account (Settings), kept in the session too for pages
that never read the account, and every email to them uses it.

The locale is chosen without touching the database: the user is read only when flask-login
already loaded them for this request, so error pages render even when the database is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, force_locale, get_locale, get_translations
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext as _nl

# The interface's languages, each named in itself (a person looking for theirs reads it so).
LANGUAGES: dict[str, str] = {"en": "English", "ru": "Русский"}
DEFAULT = "en"
# Set by the language choice of a visitor (the sign-in and registration pages offer it).
COOKIE_NAME = "wn_lang"
SESSION_KEY = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

# Extraction keywords beyond Babel's defaults (`_`, `gettext`, `ngettext`, `N_`, ...): the lazy
# forms used for messages defined at import time (form labels, domain errors). The README's
# `pybabel extract` command passes the same.
KEYWORDS = {"_l": None, "_nl": (1, 2)}

__all__ = ["DEFAULT", "LANGUAGES", "_l", "_nl", "current", "in_language", "init_app"]


def init_app(app: Flask) -> None:
    """Bind Flask-Babel with the catalogs inside the package and the locale selector below."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")  # under root_path
    Babel(app, locale_selector=select)
    # A page asks for dozens of messages: look the catalog up once per request and language,
    # not once per message as Flask-Babel's own callables do.
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )
    # {% trans %} blocks are written across lines; extraction and rendering both trim them.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals["languages"] = LANGUAGES
    app.context_processor(lambda: {"current_language": current()})


def normalize(value: str | None) -> str | None:
    """Return a supported language code for `value` ("ru-RU" -> "ru"), or None."""
    if not value:
        return None
    code = value.replace("_", "-").split("-", 1)[0].strip().lower()
    return code if code in LANGUAGES else None


def select() -> str:
    """The language of this request: the account's (or, before the account is read, the one
    kept in the session at sign-in), else this browser's choice, else its header."""
    user = g.get("_login_user")  # only what flask-login already loaded: never a database read
    if user is not None and getattr(user, "is_authenticated", False):
        chosen = normalize(getattr(user, "language", None))
        if chosen:
            return chosen
    if user is None and has_request_context() and session.get("_user_id"):
        # Signed in, on a page that has not read the account (help, not found): the
        # language the account had when this login began or the person last chose one.
        chosen = normalize(session.get(SESSION_KEY))
        if chosen:
            return chosen
    return visitor_language()


def remember(code: str | None) -> None:
    """Keep a signed-in person's language in their session (see `select`)."""
    session[SESSION_KEY] = normalize(code) or DEFAULT


def visitor_language() -> str:
    """The language for someone not signed in: their choice on this browser, else the browser's."""
    if not has_request_context():
        return DEFAULT
    chosen = normalize(request.cookies.get(COOKIE_NAME))
    return chosen or request.accept_languages.best_match(list(LANGUAGES), DEFAULT)


def translations():
    """The catalog of the language in effect, kept for the request while that language lasts
    (an email rendered in another language mid-request gets its own)."""
    if not has_request_context():
        return get_translations()
    locale = get_locale()
    kept = g.get("_wn_translations")
    if kept is None or kept[0] is not locale:
        kept = g._wn_translations = (locale, get_translations())
    return kept[1]


def current() -> str:
    """The language code in effect ("en" outside a request or an email being rendered)."""
    locale = get_locale()
    return normalize(str(locale)) or DEFAULT if locale is not None else DEFAULT


@contextmanager
def in_language(code: str | None) -> Iterator[None]:
    """Render in another person's language (emails): `with in_language(user.language): ...`."""
    with force_locale(normalize(code) or DEFAULT):
        yield
