"""Email settings per user, and the signed one-click unsubscribe links (RFC 8058).

A link names one user and one kind of email and is signed with SECRET_KEY, so it cannot be
turned into another user's link or another kind; it carries no expiry because an email can be
read long after it was sent, and unsubscribing twice does no harm.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

from wishnotes import i18n, timezones
from wishnotes.errors import InvalidInput, UnsubscribeLinkInvalid
from wishnotes.extensions import db
from wishnotes.models import User

# Kinds of email a user can turn off, and the User column that turns each on.
WEEKLY, DAILY, NOTE_NOTICE = "weekly", "daily", "note_notice"
SWITCHES = {WEEKLY: "weekly_email", DAILY: "daily_email", NOTE_NOTICE: "note_notice"}
# Said as "You will no longer receive …" (so in Russian, in the accusative).
KIND_NAMES = {
    WEEKLY: i18n._l("the weekly summary"),
    DAILY: i18n._l("the daily summary"),
    NOTE_NOTICE: i18n._l("the emails about new notes"),
}
WEEKDAYS = (
    i18n._l("Monday"),
    i18n._l("Tuesday"),
    i18n._l("Wednesday"),
    i18n._l("Thursday"),
    i18n._l("Friday"),
    i18n._l("Saturday"),
    i18n._l("Sunday"),
)
# A new account's weekly email falls on one of these calm evening slots (weekday, local hour),
# picked by its id: spread evenly, so not every email of the world falls due in one minute.
DEFAULT_WEEKDAYS = (4, 5, 6)  # Friday, Saturday, Sunday
DEFAULT_HOURS = (17, 18, 19, 20, 21)
_TOKEN_SALT = "wishnotes.unsubscribe"  # noqa: S105 - a namespace, not a secret
_TOKEN_MAX = 200


@dataclass(frozen=True)
class EmailSettings:
    """Everything the email settings page edits."""

    timezone: str
    weekly_email: bool
    weekly_weekday: int
    weekly_hour: int
    daily_email: bool
    daily_hour: int
    note_notice: bool
    discreet_subjects: bool


def default_slot(user_id: int) -> tuple[int, int]:
    """Return the (weekday, hour) a new account's weekly email starts on, spread by its id."""
    # Hours vary fastest, so consecutive sign-ups land in different hours of one evening.
    index = user_id % (len(DEFAULT_WEEKDAYS) * len(DEFAULT_HOURS))
    weekday, hour = divmod(index, len(DEFAULT_HOURS))
    return DEFAULT_WEEKDAYS[weekday], DEFAULT_HOURS[hour]


def settings_of(user: User) -> EmailSettings:
    """Return the user's current email settings."""
    return EmailSettings(
        **{name: getattr(user, name) for name in EmailSettings.__dataclass_fields__}
    )


def update_settings(*, user: User, settings: EmailSettings) -> None:
    """Check and store a user's email settings."""
    timezone = timezones.check(settings.timezone)
    _check_range(settings.weekly_weekday, 0, 6, "weekly_weekday", i18n._l("Please choose a day."))
    _check_range(settings.weekly_hour, 0, 23, "weekly_hour", i18n._l("Please choose an hour."))
    _check_range(settings.daily_hour, 0, 23, "daily_hour", i18n._l("Please choose an hour."))
    user.timezone = timezone
    user.weekly_email = bool(settings.weekly_email)
    user.weekly_weekday = settings.weekly_weekday
    user.weekly_hour = settings.weekly_hour
    user.daily_email = bool(settings.daily_email)
    user.daily_hour = settings.daily_hour
    user.note_notice = bool(settings.note_notice)
    user.discreet_subjects = bool(settings.discreet_subjects)
    db.session.commit()


def adopt_timezone(*, user: User, name: str | None) -> bool:
    """Take the zone a browser reported as the user's own, if it is a real zone; say whether.

    Used at sign-up, where the zone comes from a script and is never required: anything that
    is not a known zone is quietly ignored and the user keeps the default.
    """
    try:
        user.timezone = timezones.check(name)
    except InvalidInput:
        return False
    db.session.commit()
    return True


def set_language(*, user: User, code: str | None) -> None:
    """Store the language of the user's pages and emails; InvalidInput for one not offered."""
    language = i18n.normalize(code)
    if language is None or language != code:
        raise InvalidInput(i18n._l("Please choose one of the languages offered."), field="language")
    user.language = language
    db.session.commit()


def wants(user: User, kind: str) -> bool:
    """Return whether the user still wants emails of an unsubscribable kind."""
    return bool(getattr(user, SWITCHES[kind]))


def unsubscribe_token(*, user_id: int, kind: str, secret_key: str) -> str:
    """Return the signed token of a one-click unsubscribe link: "<user id>.<kind>.<signature>"."""
    if kind not in SWITCHES:
        raise ValueError(f"emails of kind {kind!r} cannot be unsubscribed from")
    return _signer(secret_key).sign(f"{user_id}.{kind}").decode("ascii")


def read_unsubscribe_token(token: str, *, secret_key: str) -> tuple[int, str]:
    """Return (user id, kind) from a token, or raise UnsubscribeLinkInvalid."""
    if not token or len(token) > _TOKEN_MAX or not token.isascii():
        raise UnsubscribeLinkInvalid()
    try:
        payload = _signer(secret_key).unsign(token).decode("ascii")
    except BadSignature:
        raise UnsubscribeLinkInvalid() from None
    raw_id, _, kind = payload.partition(".")
    if not raw_id.isdigit() or kind not in SWITCHES:
        raise UnsubscribeLinkInvalid()
    return int(raw_id), kind


def unsubscribe(*, token: str, secret_key: str) -> str:
    """Turn off the kind of email a token names for its user; return the kind.

    Idempotent, and quiet about accounts that no longer exist (there is nothing left to send).
    """
    user_id, kind = read_unsubscribe_token(token, secret_key=secret_key)
    user = db.session.get(User, user_id)
    if user is not None:
        setattr(user, SWITCHES[kind], False)
        db.session.commit()
    return kind


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str) -> Signer:
    # One per key: a scheduler pass signs a link for each of many thousand emails.
    return Signer(secret_key, salt=_TOKEN_SALT, digest_method=hashlib.sha256)


def _check_range(value: object, low: int, high: int, field: str, message: str) -> None:
    if type(value) is not int or not low <= value <= high:
        raise InvalidInput(message, field=field)
