"""The wish cards: a deck of short wishes in themes, one TOML file per language.

Keys are stable: a person's answers are kept against them (inside their sealed deck state) and
the matching tags are derived from them, so a key is never renamed or reused. One theme may be
marked `intimate`; its cards appear only to a pair where both partners turned it on.

Only keys are ever stored, never texts: every language's file has exactly the themes, cards,
order and flags of the English one (checked when it loads), so partners who read different
languages answer and match the same cards, each seeing them in their own language.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from wishnotes import datafiles, i18n

DATA_DIR = Path(__file__).with_name("wish_cards")
FORMAT = 1
MIN_CARDS = 120
MAX_TEXT_CHARS = 90
MAX_TITLE_CHARS = 40

_TOP_FIELDS = {"format", "language", "themes"}
_THEME_FIELDS = {"key", "title", "cards", "intimate"}
_CARD_FIELDS = {"key", "text"}
_KEY_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class DeckError(ValueError):
    """A card file is unreadable or breaks a format rule; the message names file and entry."""


@dataclass(frozen=True, slots=True)
class Card:
    key: str
    text: str
    theme: str
    intimate: bool


@dataclass(frozen=True, slots=True)
class Theme:
    key: str
    title: str
    intimate: bool
    cards: tuple[Card, ...]


@dataclass(frozen=True, slots=True)
class Deck:
    language: str
    themes: tuple[Theme, ...]

    def cards(self, *, intimate: bool) -> tuple[Card, ...]:
        """Every card in deck order; the intimate theme's only when `intimate`."""
        return tuple(c for t in self.themes if intimate or not t.intimate for c in t.cards)

    def card(self, key: str) -> Card:
        """Return the card with this key; LookupError if there is none."""
        for card in self.cards(intimate=True):
            if card.key == key:
                return card
        raise LookupError(f"no card {key!r} in the {self.language!r} deck")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(card.key for card in self.cards(intimate=True))


def load_deck(path: Path) -> Deck:
    """Read one card file and validate it strictly; DeckError names file and entry."""
    path = Path(path)
    data = datafiles.read(path, DeckError)
    where = path.name
    _fields(data, _TOP_FIELDS, _TOP_FIELDS, where)
    if data["format"] != FORMAT:
        raise DeckError(f"{where}: format must be {FORMAT}")
    language = data["language"]
    if not isinstance(language, str) or not datafiles.LANGUAGE_CODE.fullmatch(language):
        raise DeckError(f"{where}: language must be a lowercase code like 'en'")
    if language != path.stem:
        raise DeckError(f"{where}: language {language!r} does not match the file name")
    themes = tuple(_theme(raw, f"{where} theme {n}") for n, raw in enumerate(data["themes"], 1))
    deck = Deck(language=language, themes=themes)
    keys = [t.key for t in themes] + list(deck.keys)
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise DeckError(f"{where}: keys used twice: {', '.join(duplicates)}")
    if len(deck.keys) < MIN_CARDS:
        raise DeckError(f"{where}: a deck needs at least {MIN_CARDS} cards")
    if sum(t.intimate for t in themes) > 1:
        raise DeckError(f"{where}: at most one theme can be intimate")
    return deck


def deck(language: str | None = None) -> Deck:
    """Return the shipped deck of a language, by default the one in effect (`i18n.current()`).

    A language without a card file gets the English deck. Each file is read and validated once.
    """
    return _shipped(datafiles.choose(DATA_DIR, language))


def find(key: str | None) -> Card | None:
    """Return the card with this key in the language in effect, or None (keys come from links)."""
    try:
        return deck().card(key) if key else None
    except LookupError:
        return None


def languages() -> frozenset[str]:
    """The language codes that have a card file."""
    return frozenset(datafiles.languages(DATA_DIR))


@functools.cache
def _shipped(language: str) -> Deck:
    loaded = load_deck(DATA_DIR / f"{language}.toml")
    if language != i18n.DEFAULT:
        _same_cards(loaded, _shipped(i18n.DEFAULT))
    return loaded


def _same_cards(translated: Deck, original: Deck) -> None:
    """Refuse a translation whose themes, cards, order or flags differ from the original's."""

    def shape(d: Deck) -> list[tuple[str, bool, tuple[str, ...]]]:
        return [(t.key, t.intimate, tuple(c.key for c in t.cards)) for t in d.themes]

    if shape(translated) != shape(original):
        mine, theirs = set(translated.keys), set(original.keys)
        raise DeckError(
            f"{translated.language}.toml: themes, cards, order or flags differ from "
            f"{original.language}.toml (missing {sorted(theirs - mine)}, "
            f"extra {sorted(mine - theirs)})"
        )


def _theme(raw: object, where: str) -> Theme:
    _fields(raw, _THEME_FIELDS, _THEME_FIELDS - {"intimate"}, where)
    key, title = _key(raw["key"], where), _text(raw["title"], MAX_TITLE_CHARS, f"{where} title")
    intimate = raw.get("intimate", False)
    if not isinstance(intimate, bool):
        raise DeckError(f"{where}: intimate must be true or false")
    if not isinstance(raw["cards"], list) or not raw["cards"]:
        raise DeckError(f"{where}: a theme needs cards")
    cards = []
    for number, card in enumerate(raw["cards"], 1):
        at = f"{where} card {number}"
        _fields(card, _CARD_FIELDS, _CARD_FIELDS, at)
        card_key = _key(card["key"], at)
        if not card_key.startswith(f"{key}-"):
            raise DeckError(f"{at}: key {card_key!r} must start with its theme's key")
        text = _text(card["text"], MAX_TEXT_CHARS, at)
        cards.append(Card(key=card_key, text=text, theme=key, intimate=intimate))
    return Theme(key=key, title=title, intimate=intimate, cards=tuple(cards))


def _fields(raw: object, allowed: set[str], required: set[str], where: str) -> None:
    if not isinstance(raw, dict):
        raise DeckError(f"{where}: expected a table")
    unknown, missing = set(raw) - allowed, required - set(raw)
    if unknown or missing:
        raise DeckError(f"{where}: unknown {sorted(unknown)}, missing {sorted(missing)}")


def _key(value: object, where: str) -> str:
    if not isinstance(value, str) or not _KEY_RE.fullmatch(value) or len(value) > 48:
        raise DeckError(f"{where}: key must be lowercase words joined by hyphens")
    return value


def _text(value: object, limit: int, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise DeckError(f"{where}: text must be non-empty, without outer spaces")
    if len(value) > limit:
        raise DeckError(f"{where}: text longer than {limit} characters")
    return value
