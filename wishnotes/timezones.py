"""IANA time zones: which names are valid, and local wall-clock time in one of them."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from wishnotes.errors import InvalidInput
from wishnotes.i18n import _l

DEFAULT = "UTC"
_NAME_MAX = 64


@functools.cache
def names() -> tuple[str, ...]:
    """Return every IANA zone name this installation knows, sorted (from `tzdata` or the OS)."""
    # "localtime" and friends are files, not zones; "posixrules" is an implementation detail.
    return tuple(
        sorted(name for name in zoneinfo.available_timezones() if name not in {"localtime"})
    )


# Regions of the IANA names people choose from ("Europe/Berlin"); legacy aliases such as
# "US/Eastern" stay valid but are not offered.
REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    DEFAULT,
)
# How the menus name each region (the zone names themselves stay as IANA writes them).
REGION_NAMES = {
    "Africa": _l("Africa"),
    "America": _l("America"),
    "Antarctica": _l("Antarctica"),
    "Asia": _l("Asia"),
    "Atlantic": _l("Atlantic"),
    "Australia": _l("Australia"),
    "Europe": _l("Europe"),
    "Indian": _l("Indian"),
    "Pacific": _l("Pacific"),
}


def region_of(name: str) -> str:
    """Return the region a zone name is listed under ("UTC" for names outside the regions)."""
    region = name.split("/", 1)[0]
    return region if region in REGIONS else DEFAULT


def in_region(region: str) -> list[str]:
    """Return the zone names offered under a region (just "UTC" for an unknown one)."""
    if region not in REGIONS or region == DEFAULT:
        return [DEFAULT]
    return [name for name in names() if name.startswith(region + "/")]


@functools.cache
def by_region() -> dict[str, list[str]]:
    """Return the zones people choose from, grouped by region (UTC stands alone, not here)."""
    return {region: in_region(region) for region in REGIONS if region != DEFAULT}


@functools.cache
def offered() -> frozenset[str]:
    """Return every zone name the menus offer."""
    return frozenset({DEFAULT, *(name for zones in by_region().values() for name in zones)})


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(names())


def check(name: str | None, *, field: str = "timezone") -> str:
    """Return `name` if it is a known IANA zone such as "Europe/Berlin", else InvalidInput."""
    name = (name or "").strip()
    if not name or len(name) > _NAME_MAX or name not in _known():
        raise InvalidInput(_l("Please choose a time zone from the list."), field=field)
    return name


def zone(name: str) -> ZoneInfo:
    """Return the zone for a stored name (UTC if the name stopped existing in tzdata)."""
    try:
        return ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT)


def local_date(moment: datetime, name: str) -> date:
    """Return the calendar date at an aware instant in the named zone."""
    return moment.astimezone(zone(name)).date()


def passed_hours(name: str, *, after: datetime, until: datetime) -> list[datetime]:
    """Return the local wall-clock hour starts in (after, until], as naive local datetimes.

    Wall-clock, not elapsed time, so daylight-saving changes come out right: when clocks jump
    from 02:00 to 03:00 both 02:00 and 03:00 are returned at once (no email is lost), and when
    01:00 comes round a second time it is not returned again (no email is doubled).
    """
    tz = zone(name)
    start = after.astimezone(tz).replace(tzinfo=None)
    end = until.astimezone(tz).replace(tzinfo=None)
    hours = []
    hour = end.replace(minute=0, second=0, microsecond=0)
    while hour > start:
        hours.append(hour)
        hour -= timedelta(hours=1)
    hours.reverse()
    return hours
