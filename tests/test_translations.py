"""The catalogs are complete: every message in the code is translated, and compiled as it reads.

Extraction runs the README's own `pybabel extract` command (mappings and keywords from
pyproject.toml), so a message added to a template or a view without a translation fails here,
as does a translation left behind after its message was removed, or a `.mo` file not rebuilt
after its `.po` changed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from wishnotes import i18n

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "wishnotes" / "translations"
TRANSLATED = sorted(set(i18n.LANGUAGES) - {i18n.DEFAULT})


def _pybabel(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-c", "from babel.messages.frontend import main; main()", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    pot = tmp_path_factory.mktemp("catalogs") / "messages.pot"
    keywords = [f"-k{name}" if spec is None else f"-k{name}:1,2" for name, spec in _keywords()]
    _pybabel("extract", "-F", "pyproject.toml", *keywords, "-o", str(pot), ".")
    with pot.open("rb") as f:
        return read_po(f)


def _keywords():
    return i18n.KEYWORDS.items()


def _catalog(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def _key(message) -> tuple:
    return (message.context, message.id)


def test_extraction_finds_the_messages_of_code_and_templates(extracted) -> None:
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    # One of each kind of source: a template, a form label, a domain error, a lazy constant.
    assert "Please sign in to continue." in ids
    assert "Language" in ids
    assert len(ids) > 300, len(ids)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated(extracted, language: str) -> None:
    catalog = _catalog(language)
    missing, untranslated = [], []
    for message in extracted:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        if found is None:
            missing.append(message.id)
        elif "fuzzy" in found.flags or not all(
            found.string if isinstance(found.string, tuple) else [found.string]
        ):
            untranslated.append(message.id)
    assert not missing, f"not in the {language} catalog (run the update command): {missing[:20]}"
    assert not untranslated, f"untranslated or fuzzy in {language}: {untranslated[:20]}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_no_translation_outlives_its_message(extracted, language: str) -> None:
    wanted = {_key(m) for m in extracted if m.id}
    stale = [m.id for m in _catalog(language) if m.id and _key(m) not in wanted]
    assert not stale, f"translations of messages the code no longer has: {stale[:20]}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_placeholders_and_plural_forms_match(language: str) -> None:
    catalog = _catalog(language)
    assert catalog.num_plurals == (3 if language == "ru" else catalog.num_plurals)
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert not problems, problems[:20]


@pytest.mark.parametrize("language", TRANSLATED)
def test_compiled_catalog_is_current(language: str) -> None:
    folder = TRANSLATIONS / language / "LC_MESSAGES"
    with (folder / "messages.mo").open("rb") as f:
        compiled = {_plain(m.context, m.id): _plain(m.string) for m in read_mo(f) if m.id}
    written = {
        _plain(m.context, m.id): _plain(m.string)
        for m in _catalog(language)
        if m.id and m.string and "fuzzy" not in m.flags
    }
    assert compiled == written, "stale .mo: run `pybabel compile -d wishnotes/translations`"


def _plain(*parts):
    """A message's id or strings as one hashable value (plural forms come as lists or tuples)."""
    flat = tuple(tuple(p) if isinstance(p, list | tuple) else p for p in parts)
    return flat if len(flat) > 1 else flat[0]


def test_every_language_of_the_interface_has_its_data_files() -> None:
    for folder in ("prompt_data", "practice_data", "wish_cards"):
        shipped = {p.stem for p in (ROOT / "wishnotes" / folder).glob("*.toml")}
        assert shipped == set(i18n.LANGUAGES), (folder, shipped)
