"""Texts shipped as data: one TOML file per language in a folder, read and chosen one way.

The prompt library (`prompt_data/`), the practices (`practice_data/`) and the wish cards
(`wish_cards/`) each name their files after the language ("en.toml", "ru.toml"), with the same
keys in every file. This module reads a file (a broken one names itself) and picks the file a
reader gets: their language's when it is shipped, else English.
"""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path
from typing import Any

from wishnotes import i18n

LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


def read(path: Path, error: type[Exception]) -> dict[str, Any]:
    """Return a data file's TOML; `error` naming the file when it is not TOML or not UTF-8."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path.name}: invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path.name}: not valid UTF-8: {exc}") from exc


@functools.cache
def languages(folder: Path) -> tuple[str, ...]:
    """The language codes that have a file in `folder`, sorted."""
    return tuple(sorted(p.stem for p in folder.glob("*.toml") if LANGUAGE_CODE.fullmatch(p.stem)))


def choose(folder: Path, language: str | None = None) -> str:
    """The file language for a reader of `language` (default: the language in effect).

    "ru-RU" reads "ru"; a language without a file, or anything not a language, reads English.
    """
    code = i18n.normalize(language) if language else i18n.current()
    return code if code in languages(folder) else i18n.DEFAULT
