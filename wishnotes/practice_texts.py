"""The shipped texts of the practices: place starters and agreements, one TOML file per language.

Validated strictly at load, like the prompt library (wishnotes.prompts): a broken file stops
the app with a message naming the file and the entry, instead of showing half a list. Every
language has the same agreement keys; `shipped()` gives the texts in the language of the
current request (wishnotes.i18n), and English for a language without a file.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from wishnotes import datafiles

DATA_DIR = Path(__file__).with_name("practice_data")
FORMAT = 1
MIN_STARTERS = 6
STARTERS_PER_TURN = 3
MAX_STARTER_CHARS = 60
MIN_AGREEMENTS = 3
MAX_TITLE_CHARS = 60
MAX_AGREEMENT_CHARS = 300
MAX_AGREEMENT_SENTENCES = 3
STARTER_END = "…"

_TOP_FIELDS = ("format", "language", "place", "agreements")
_PLACE_FIELDS = ("starters",)
_AGREEMENT_FIELDS = ("key", "title", "text")
_KEY_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Where a sentence ends, in any language: at . ! ? or an ellipsis (maybe behind closing quotes
# or brackets, as English, German, French or Russian close them) before a space or the end; or
# at an ideographic full stop, exclamation or question mark, which needs no space after it.
_CLOSERS = "\"'\u201d\u2019\u00bb\u201c\u203a)\\]\u300d\u300f"
_SENTENCE_END_RE = re.compile(
    rf"[.!?\u2026]+[{_CLOSERS}]*(?=\s|$)|[\u3002\uff01\uff1f]+[{_CLOSERS}]*"
)
_SENTENCE_MARKS = ".!?\u2026\u3002\uff01\uff1f"


class PracticeTextsError(ValueError):
    """A practice text file is unreadable or breaks a rule; the message names file and entry."""


@dataclass(frozen=True, slots=True)
class AgreementText:
    """A shipped agreement a partner can propose as it is or start from."""

    key: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class PracticeTexts:
    """All shipped practice texts of one language."""

    language: str
    place_starters: tuple[str, ...]
    agreements: tuple[AgreementText, ...]

    def agreement(self, key: str) -> AgreementText:
        """Return the shipped agreement with this key; LookupError if there is none."""
        for agreement in self.agreements:
            if agreement.key == key:
                return agreement
        raise LookupError(f"no agreement {key!r} in the {self.language!r} texts")

    def starters_for(self, seed: str) -> tuple[str, ...]:
        """Return three place starters, the same ones each time for the same turn (`seed`)."""
        # A stable choice per turn, not a secret: a seeded shuffle is exactly what is wanted.
        chooser = random.Random(seed)  # noqa: S311
        return tuple(chooser.sample(self.place_starters, STARTERS_PER_TURN))


def load_texts(path: Path) -> PracticeTexts:
    """Read one practice text file and validate it; PracticeTextsError names file and entry."""
    path = Path(path)
    data = datafiles.read(path, PracticeTextsError)
    return _Parser(path.name, expected_language=path.stem).build(data)


def shipped(language: str | None = None) -> PracticeTexts:
    """Return the shipped practice texts of a language ("ru", "ru-RU"), loaded once.

    Without a language: the one in effect for this request or email (wishnotes.i18n.current()).
    A language without a file of its own, or anything that is not a language code, gets English.
    """
    return _shipped(datafiles.choose(DATA_DIR, language if isinstance(language, str) else None))


def available_languages() -> tuple[str, ...]:
    """Return the codes of the languages that have a practice text file, sorted."""
    return datafiles.languages(DATA_DIR)


def every_language() -> tuple[PracticeTexts, ...]:
    """Return the shipped practice texts of every language (to recognise a text sealed in one)."""
    return tuple(_shipped(code) for code in available_languages())


@functools.cache
def _shipped(language: str) -> PracticeTexts:
    return load_texts(DATA_DIR / f"{language}.toml")


class _Parser:
    def __init__(self, file_name: str, expected_language: str) -> None:
        self.file_name = file_name
        self.expected_language = expected_language

    def fail(self, where: str, message: str) -> NoReturn:
        prefix = f"{self.file_name}: {where}: " if where else f"{self.file_name}: "
        raise PracticeTextsError(prefix + message)

    def build(self, data: dict[str, Any]) -> PracticeTexts:
        self.fields(data, _TOP_FIELDS, "")
        if type(data["format"]) is not int or data["format"] != FORMAT:
            self.fail("", f"format must be {FORMAT} (got {data['format']!r})")
        language = data["language"]
        if not isinstance(language, str) or not datafiles.LANGUAGE_CODE.fullmatch(language):
            self.fail("", f"language must be a lowercase code of 2-3 letters (got {language!r})")
        if language != self.expected_language:
            self.fail("", f"language {language!r} does not match the file name")
        return PracticeTexts(
            language=language,
            place_starters=self.starters(data["place"]),
            agreements=self.agreements(data["agreements"]),
        )

    def starters(self, place: Any) -> tuple[str, ...]:
        if not isinstance(place, dict):
            self.fail("place", "must be a table ([place])")
        self.fields(place, _PLACE_FIELDS, "place")
        values = place["starters"]
        if not isinstance(values, list) or len(values) < MIN_STARTERS:
            self.fail("place", f"starters must be an array of at least {MIN_STARTERS} strings")
        starters: list[str] = []
        for index, value in enumerate(values):
            where = f"place.starters[{index}]"
            starter = self.string(value, where, MAX_STARTER_CHARS)
            if not starter.endswith(STARTER_END):
                self.fail(where, f'must end with "{STARTER_END}" (got {starter!r})')
            if starter in starters:
                self.fail(where, f"repeats an earlier starter: {starter!r}")
            starters.append(starter)
        return tuple(starters)

    def agreements(self, values: Any) -> tuple[AgreementText, ...]:
        if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
            self.fail("agreements", "must be an array of tables ([[agreements]])")
        if len(values) < MIN_AGREEMENTS:
            self.fail("agreements", f"must have at least {MIN_AGREEMENTS} entries")
        found: list[AgreementText] = []
        for index, data in enumerate(values):
            where = f"agreements[{index}]"
            self.fields(data, _AGREEMENT_FIELDS, where)
            key = self.string(data["key"], where)
            if not _KEY_RE.fullmatch(key):
                self.fail(where, f"key must be a lowercase slug (got {key!r})")
            if any(a.key == key for a in found):
                self.fail(where, f"duplicate agreement key {key!r}")
            text = self.string(data["text"], where, MAX_AGREEMENT_CHARS)
            sentences = len(_SENTENCE_END_RE.findall(text.rstrip(_SENTENCE_MARKS) + "."))
            if sentences > MAX_AGREEMENT_SENTENCES:
                self.fail(where, f"text must be at most {MAX_AGREEMENT_SENTENCES} sentences")
            title = self.string(data["title"], where, MAX_TITLE_CHARS)
            found.append(AgreementText(key=key, title=title, text=text))
        return tuple(found)

    def fields(self, data: dict[str, Any], expected: tuple[str, ...], where: str) -> None:
        unknown = [name for name in data if name not in expected]
        if unknown:
            self.fail(where, f"unknown field {unknown[0]!r} (expected: {', '.join(expected)})")
        for name in expected:
            if name not in data:
                self.fail(where, f"missing field {name!r}")

    def string(self, value: Any, where: str, max_chars: int | None = None) -> str:
        if not isinstance(value, str):
            self.fail(where, f"must be a string (got {type(value).__name__})")
        text = " ".join(value.split())
        if not text:
            self.fail(where, "must not be empty")
        if max_chars is not None and len(text) > max_chars:
            self.fail(where, f"must be at most {max_chars} characters (has {len(text)})")
        return text
