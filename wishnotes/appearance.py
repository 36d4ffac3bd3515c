"""Appearance: how the app presents itself on a user's screen (name, icon, blurred notes).

The default look is discreet: a tab titled "Notes" and a plain notebook icon that a child or a
colleague glancing at the phone would not look at twice. The named look is a choice, never the
default.
"""

from __future__ import annotations

from dataclasses import dataclass

from wishnotes.errors import InvalidInput
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.models import User


@dataclass(frozen=True)
class Look:
    """A name and icon set the app can wear: tab title, home-screen name, icons, colours."""

    key: str
    name: str  # tab title and installed-app name
    label: str  # how the settings page names the choice
    description: str
    icon: str  # base name of the files under static/icons/
    theme_color: str  # browser chrome around the installed app
    background_color: str  # splash screen while it starts


DISCREET = Look(
    key="discreet",
    name=_l("Notes"),
    label=_l("Discreet"),
    description=_l("Called “Notes”, with a plain notebook icon."),
    icon="notebook",
    theme_color="#56646c",
    background_color="#faf7f2",
)
NAMED = Look(
    key="named",
    name=_l("Wishnotes"),
    label=_l("Named"),
    description=_l("Called “Wishnotes”, with a heart icon."),
    icon="heart",
    theme_color="#8a4463",
    background_color="#faf7f2",
)
LOOKS: dict[str, Look] = {look.key: look for look in (DISCREET, NAMED)}
DEFAULT_LOOK = DISCREET


def look_of(user: User | None) -> Look:
    """Return the look a user chose; the discreet one for visitors and unknown values."""
    return LOOKS.get(getattr(user, "app_look", None) or "", DEFAULT_LOOK)


def blurs_notes(user: User | None) -> bool:
    """Return whether note bodies stay blurred until tapped (on unless the user turned it off)."""
    return bool(getattr(user, "blur_notes", True))


def set_appearance(*, user: User, blur_notes: bool, app_look: str) -> Look:
    """Save a user's appearance choices and return the look now in use."""
    look = LOOKS.get(app_look or "")
    if look is None:
        raise InvalidInput(_l("Please choose one of the two looks."), field="app_look")
    user.blur_notes = bool(blur_notes)
    user.app_look = look.key
    db.session.commit()
    return look
