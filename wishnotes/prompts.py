"""The prompt library: themed program weeks of daily prompts, one TOML file per language."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from wishnotes import datafiles

DATA_DIR = Path(__file__).with_name("prompt_data")
# Every language's file has the same keys, so a key stored with a pair's week or a note reads
# in whatever language the reader uses; English is the library for a language without a file
# (wishnotes.datafiles.choose).
FORMAT = 1
DAYS_PER_WEEK = 7
MIN_STARTERS = 3
MAX_TITLE_CHARS = 60
MAX_SUMMARY_CHARS = 300
MAX_SUMMARY_SENTENCES = 2
MAX_GUIDANCE_CHARS = 400
MAX_GUIDANCE_SENTENCES = 3
MAX_STARTER_CHARS = 80
# Starters are offered as unfinished sentences on the compose screen; the ellipsis shows that.
STARTER_END = "…"

_TOP_FIELDS = ("format", "language", "weeks")
_WEEK_FIELDS = ("key", "title", "summary", "prompts")
_PROMPT_FIELDS = ("key", "title", "guidance", "starters")
_PROMPT_OPTIONAL = ("practice",)
# A prompt may lead to one of the practices instead of the compose screen (wishnotes.together).
PRACTICES = ("table", "place", "agreements")

# fullmatch, not match with "$": "$" would also accept a trailing newline.
_KEY_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# A sentence ends at . ! ? (maybe with closing quotes) before a space or the end; CJK full stops
# need no space. "…" is not counted: guidance quotes starters such as "I miss…" mid-sentence.
# Escapes keep look-alike characters readable: \u201d \u2019 \u00bb are closing quotes,
# \u3002 \uff01 \uff1f the CJK full stop, exclamation and question marks, \u300d \u300f brackets.
_SENTENCE_END_RE = re.compile(
    r"[.!?]+[\"'\u201d\u2019\u00bb)\]]*(?=\s|$)|[\u3002\uff01\uff1f]+[\u201d\u2019\u300d\u300f)]*"
)


class PromptLibraryError(ValueError):
    """A prompt file is unreadable or breaks a format rule; the message names file and entry."""


class UnknownLanguageError(ValueError):
    """There is no prompt library for the requested language code."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """One daily prompt: a title, a little guidance and sentence starters for the compose screen."""

    key: str
    title: str
    guidance: str
    starters: tuple[str, ...]
    week_key: str
    day: int
    practice: str | None = None  # one of PRACTICES: where its starters lead


@dataclass(frozen=True, slots=True)
class Week:
    """A themed program week of exactly seven prompts, in day order."""

    key: str
    title: str
    summary: str
    prompts: tuple[Prompt, ...]

    def prompt_for_day(self, day: int) -> Prompt:
        """Return the prompt for day 1..7; LookupError otherwise (never a negative index)."""
        if not 1 <= day <= len(self.prompts):
            raise LookupError(f"week {self.key!r} has no day {day!r}")
        return self.prompts[day - 1]


@dataclass(frozen=True, slots=True)
class Library:
    """All weeks of one language, in the order a pair moves through them."""

    language: str
    weeks: tuple[Week, ...]

    def week(self, key: str) -> Week:
        """Return the week with this key; LookupError if there is none."""
        return self.weeks[self._index(key)]

    def prompt(self, key: str) -> Prompt:
        """Return the prompt with this key from any week; LookupError if there is none."""
        for week in self.weeks:
            for prompt in week.prompts:
                if prompt.key == key:
                    return prompt
        raise LookupError(f"no prompt {key!r} in the {self.language!r} library")

    def first_week(self) -> Week:
        """Return the week a new pair starts with (the wish-note practice in the shipped files)."""
        return self.weeks[0]

    def next_week(self, key: str) -> Week | None:
        """Return the theme after the given week, or None after the last one."""
        index = self._index(key) + 1
        return self.weeks[index] if index < len(self.weeks) else None

    def _index(self, key: str) -> int:
        for index, week in enumerate(self.weeks):
            if week.key == key:
                return index
        raise LookupError(f"no week {key!r} in the {self.language!r} library")


def load_library(path: Path) -> Library:
    """Read one prompt file and validate it strictly; PromptLibraryError names file and entry."""
    path = Path(path)
    data = datafiles.read(path, PromptLibraryError)
    return _Parser(path.name, expected_language=path.stem).build(data)


def shipped(language: str | None = None) -> Library:
    """Return the shipped prompt library for a language code such as "en" (loaded once).

    Without a code: the library of the language in effect (`wishnotes.i18n.current()`: the
    request's, or the one an email is rendered in with `i18n.in_language`), or the English one
    when that language has no prompt file. An explicit code must have a file.
    """
    # One cache entry per code, so shipped() and shipped("en") return the same object.
    if language is None:
        return _shipped_library(datafiles.choose(DATA_DIR))
    return _shipped_library(_check_language(language))


def available_languages() -> list[str]:
    """Return the language codes that have a prompt file, sorted."""
    return list(datafiles.languages(DATA_DIR))


def _check_language(language: object) -> str:
    # Only a bare code may reach the file system: no separators, dots or other path tricks.
    if not isinstance(language, str) or not datafiles.LANGUAGE_CODE.fullmatch(language):
        raise UnknownLanguageError(f"not a language code: {language!r}")
    return language


@functools.cache
def _shipped_library(language: str) -> Library:
    path = DATA_DIR / f"{language}.toml"
    if not path.is_file():
        raise UnknownLanguageError(f"no prompt library for language {language!r}")
    return load_library(path)


def _count_sentences(text: str) -> int:
    ends = list(_SENTENCE_END_RE.finditer(text))
    tail = text[ends[-1].end() :] if ends else text
    return len(ends) + (1 if tail.strip() else 0)


class _Parser:
    """Turns parsed TOML into a Library, stopping at the first rule broken."""

    def __init__(self, file_name: str, expected_language: str) -> None:
        self.file_name = file_name
        self.expected_language = expected_language

    def fail(self, where: str, message: str) -> NoReturn:
        prefix = f"{self.file_name}: {where}: " if where else f"{self.file_name}: "
        raise PromptLibraryError(prefix + message)

    def build(self, data: dict[str, Any]) -> Library:
        self.fields(data, _TOP_FIELDS, "")
        fmt = data["format"]
        # bool is a subclass of int; "format = true" is a mistake, not format 1.
        if type(fmt) is not int or fmt != FORMAT:
            self.fail("", f"format must be {FORMAT} (got {fmt!r})")
        language = data["language"]
        if not isinstance(language, str) or not datafiles.LANGUAGE_CODE.fullmatch(language):
            self.fail("", f"language must be a lowercase code of 2-3 letters (got {language!r})")
        if language != self.expected_language:
            self.fail("", f"language {language!r} does not match the file name")
        weeks_data = self.tables(data["weeks"], "weeks", "")
        if not weeks_data:
            self.fail("", "weeks must not be empty")

        weeks: list[Week] = []
        week_keys: dict[str, str] = {}
        prompt_keys: dict[str, str] = {}
        for week_index, week_data in enumerate(weeks_data):
            where = self.label(f"weeks[{week_index}]", week_data)
            self.fields(week_data, _WEEK_FIELDS, where)
            key = self.key(week_data, where)
            if key in week_keys:
                self.fail(where, f"duplicate week key {key!r} (also {week_keys[key]})")
            week_keys[key] = where
            title = self.text(week_data, "title", where, MAX_TITLE_CHARS)
            summary = self.text(
                week_data, "summary", where, MAX_SUMMARY_CHARS, MAX_SUMMARY_SENTENCES
            )
            prompts_data = self.tables(week_data["prompts"], "prompts", where)
            if len(prompts_data) != DAYS_PER_WEEK:
                self.fail(
                    where, f"must have exactly {DAYS_PER_WEEK} prompts (has {len(prompts_data)})"
                )
            prompts = []
            for prompt_index, prompt_data in enumerate(prompts_data):
                prompt_where = self.label(
                    f"weeks[{week_index}].prompts[{prompt_index}]", prompt_data
                )
                prompt = self.prompt(prompt_data, prompt_where, key, prompt_index + 1)
                # Keys are unique across the whole file: program state stores a prompt key alone.
                if prompt.key in prompt_keys:
                    self.fail(
                        prompt_where,
                        f"duplicate prompt key {prompt.key!r} (also {prompt_keys[prompt.key]})",
                    )
                prompt_keys[prompt.key] = prompt_where
                prompts.append(prompt)
            weeks.append(Week(key=key, title=title, summary=summary, prompts=tuple(prompts)))
        return Library(language=language, weeks=tuple(weeks))

    def prompt(self, data: dict[str, Any], where: str, week_key: str, day: int) -> Prompt:
        self.fields(data, _PROMPT_FIELDS, where, optional=_PROMPT_OPTIONAL)
        key = self.key(data, where)
        practice = data.get("practice")
        if practice is not None and practice not in PRACTICES:
            self.fail(where, f"practice must be one of {', '.join(PRACTICES)} (got {practice!r})")
        title = self.text(data, "title", where, MAX_TITLE_CHARS)
        guidance = self.text(data, "guidance", where, MAX_GUIDANCE_CHARS, MAX_GUIDANCE_SENTENCES)
        starters_data = data["starters"]
        if not isinstance(starters_data, list):
            self.fail(where, "starters must be an array of strings")
        if len(starters_data) < MIN_STARTERS:
            self.fail(where, f"starters must have at least {MIN_STARTERS} entries")
        starters: list[str] = []
        for index, value in enumerate(starters_data):
            name = f"starters[{index}]"
            starter = self.string(value, name, where, MAX_STARTER_CHARS)
            if not starter.endswith(STARTER_END):
                self.fail(where, f'{name} must end with "{STARTER_END}" (got {starter!r})')
            if starter in starters:
                self.fail(where, f"{name} repeats an earlier starter: {starter!r}")
            starters.append(starter)
        return Prompt(
            key=key,
            title=title,
            guidance=guidance,
            starters=tuple(starters),
            week_key=week_key,
            day=day,
            practice=practice,
        )

    def fields(
        self,
        data: dict[str, Any],
        expected: tuple[str, ...],
        where: str,
        optional: tuple[str, ...] = (),
    ) -> None:
        unknown = [name for name in data if name not in expected + optional]
        if unknown:
            # Listing the expected names turns a typo such as "titel" into an obvious fix.
            self.fail(
                where, f"unknown field {unknown[0]!r} (expected fields: {', '.join(expected)})"
            )
        for name in expected:
            if name not in data:
                self.fail(where, f"missing field {name!r}")

    def tables(self, value: Any, name: str, where: str) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.fail(where, f"{name} must be an array of tables ([[...]])")
        return value

    def key(self, data: dict[str, Any], where: str) -> str:
        key = self.string(data["key"], "key", where)
        if not _KEY_RE.fullmatch(key):
            self.fail(where, f"key must be a lowercase slug such as 'wishes-1' (got {key!r})")
        return key

    def text(
        self,
        data: dict[str, Any],
        name: str,
        where: str,
        max_chars: int,
        max_sentences: int | None = None,
    ) -> str:
        text = self.string(data[name], name, where, max_chars)
        if max_sentences is not None:
            count = _count_sentences(text)
            if count > max_sentences:
                self.fail(where, f"{name} must be at most {max_sentences} sentences (has {count})")
        return text

    def string(self, value: Any, name: str, where: str, max_chars: int | None = None) -> str:
        if not isinstance(value, str):
            self.fail(where, f"{name} must be a string (got {type(value).__name__})")
        # Collapse line breaks and runs of spaces: multi-line TOML strings render as one paragraph.
        text = " ".join(value.split())
        if not text:
            self.fail(where, f"{name} must not be empty")
        if max_chars is not None and len(text) > max_chars:
            self.fail(where, f"{name} must be at most {max_chars} characters (has {len(text)})")
        return text

    @staticmethod
    def label(position: str, data: Any) -> str:
        # Name the entry by its key as well as its position, when the key is usable.
        key = data.get("key") if isinstance(data, dict) else None
        return f'{position} ("{key}")' if isinstance(key, str) and key.strip() else position
