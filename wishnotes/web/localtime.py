"""Dates and times as the viewer lives them: in their own time zone, with the zone named.

Stored times are UTC; every page shows them through these filters, in the signed-in person's
zone (Settings, Emails), so "18:00" always means 18:00 where they are, and says where that is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime

from babel.dates import format_date, format_datetime, get_timezone_location
from flask import Blueprint, has_request_context
from flask_babel import gettext
from flask_login import current_user

from wishnotes import i18n, timezones

bp = Blueprint("localtime", __name__)


def viewer_zone() -> str:
    """Return the signed-in person's zone name (UTC for visitors and emails)."""
    if has_request_context() and current_user.is_authenticated:
        return current_user.timezone or timezones.DEFAULT
    return timezones.DEFAULT


def zone_label(name: str | None = None) -> str:
    """Return a zone as people say it: "Europe/Berlin" -> "Berlin time"; "UTC" stays "UTC"."""
    name = name or viewer_zone()
    if "/" not in name:
        return name
    try:
        city = get_timezone_location(name, locale=i18n.current(), return_city=True)
    except LookupError:
        city = name.rsplit("/", 1)[1].replace("_", " ")
    return gettext("%(city)s time", city=city)


# Day-first in every language; Russian names the month in full (in its genitive form).
_PATTERNS = {
    "en": {"date": "d MMM y", "datetime": "d MMM y, HH:mm", "long": "EEEE, d MMMM"},
    "ru": {"date": "d MMMM y", "datetime": "d MMMM y, HH:mm", "long": "EEEE, d MMMM"},
}


def _format(value: date, kind: str) -> str:
    language = i18n.current()
    if not isinstance(value, datetime):
        return _format_day(value, kind, language)
    pattern = _PATTERNS.get(language, _PATTERNS[i18n.DEFAULT])[kind]
    return format_datetime(value, pattern, locale=language)


@functools.lru_cache(maxsize=4096)
def _format_day(day: date, kind: str, language: str) -> str:
    # A list shows the same few days again and again: each is formatted once.
    pattern = _PATTERNS.get(language, _PATTERNS[i18n.DEFAULT])[kind]
    return format_date(day, pattern, locale=language)


def _local(moment: datetime) -> datetime:
    return moment.astimezone(timezones.zone(viewer_zone()))


@bp.app_template_filter("local_date")
def local_date(moment: datetime | None) -> str:
    """A day in the viewer's zone, e.g. "2 Mar 2026"."""
    if moment is None:
        return ""
    return _format(_local(moment).date(), "date")


@bp.app_template_global()
def day_formatter() -> Callable[[datetime | None], str]:
    """`local_date` for a list of rows: the viewer's zone and language are looked up once."""
    zone = timezones.zone(viewer_zone())
    language = i18n.current()

    def local_day(moment: datetime | None) -> str:
        if moment is None:
            return ""
        return _format_day(moment.astimezone(zone).date(), "date", language)

    return local_day


@bp.app_template_filter("local_datetime")
def local_datetime(moment: datetime | None) -> str:
    """A day and time in the viewer's zone, zone named: "2 Mar 2026, 14:00, Berlin time"."""
    if moment is None:
        return ""
    return f"{_format(_local(moment), 'datetime')}, {zone_label()}"


@bp.app_template_filter("local_date_long")
def local_date_long(day: date | None) -> str:
    """A calendar date (already local, such as a week's first day): "Monday, 2 March"."""
    if day is None:
        return ""
    return _format(day, "long")


@bp.app_context_processor
def localtime_context() -> dict:
    return {"zone_label": zone_label}
