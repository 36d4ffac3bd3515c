"""Dates and times as the viewer lives them: in their own time zone, with the zone named.

Stored times are UTC; every page shows them through these filters, in the signed-in person's
zone (Settings, Emails), so "18:00" always means 18:00 where they are, and says where that is.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, has_request_context
from flask_login import current_user

from wishnotes import timezones

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
    return name.rsplit("/", 1)[1].replace("_", " ") + " time"


def _local(moment: datetime) -> datetime:
    return moment.astimezone(timezones.zone(viewer_zone()))


@bp.app_template_filter("local_date")
def local_date(moment: datetime | None) -> str:
    """A day in the viewer's zone, e.g. "2 Mar 2026"."""
    if moment is None:
        return ""
    return f"{_local(moment).day} {_local(moment).strftime('%b %Y')}"


@bp.app_template_filter("local_datetime")
def local_datetime(moment: datetime | None) -> str:
    """A day and time in the viewer's zone, zone named: "2 Mar 2026, 14:00, Berlin time"."""
    if moment is None:
        return ""
    local = _local(moment)
    return f"{local.day} {local.strftime('%b %Y, %H:%M')}, {zone_label()}"


@bp.app_template_filter("local_date_long")
def local_date_long(day: date | None) -> str:
    """A calendar date (already local, such as a week's first day): "Monday, 2 March"."""
    if day is None:
        return ""
    return f"{day.strftime('%A')}, {day.day} {day.strftime('%B')}"


@bp.app_context_processor
def localtime_context() -> dict:
    return {"zone_label": zone_label}
