"""Tests for the prompt library: the shipped texts and the strict loader."""

# ruff: noqa: RUF001, RUF003 (Russian text: Cyrillic letters that look like Latin ones)

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from wishnotes import prompts
from wishnotes.prompts import (
    Library,
    PromptLibraryError,
    UnknownLanguageError,
    available_languages,
    load_library,
    shipped,
)

# --- the shipped library -----------------------------------------------------------------


@pytest.fixture(scope="module")
def en() -> Library:
    return shipped("en")


def test_shipped_library_has_at_least_four_full_weeks(en: Library) -> None:
    assert en.language == "en"
    assert len(en.weeks) >= 4
    for week in en.weeks:
        assert len(week.prompts) == 7, week.key
        assert [prompt.day for prompt in week.prompts] == list(range(1, 8))
        for prompt in week.prompts:
            assert prompt.week_key == week.key
            assert len(prompt.starters) >= 3, prompt.key
            assert all(starter.endswith("…") for starter in prompt.starters), prompt.key


def test_first_week_is_the_wish_note_practice(en: Library) -> None:
    assert en.first_week().key == "wishes"
    assert en.first_week() is en.weeks[0]


def test_next_week_chains_through_every_week_and_ends_with_none(en: Library) -> None:
    seen = []
    week = en.first_week()
    while week is not None:
        seen.append(week.key)
        week = en.next_week(week.key)
    assert seen == [week.key for week in en.weeks]
    assert en.next_week(en.weeks[-1].key) is None


def test_keys_are_unique_slugs(en: Library) -> None:
    week_keys = [week.key for week in en.weeks]
    prompt_keys = [prompt.key for week in en.weeks for prompt in week.prompts]
    assert len(set(week_keys)) == len(week_keys)
    assert len(set(prompt_keys)) == len(prompt_keys)
    for key in week_keys + prompt_keys:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", key)


def test_lookups_by_key(en: Library) -> None:
    rituals = en.week("rituals")
    assert rituals.key == "rituals"
    assert en.prompt("rituals-4") is rituals.prompts[3]
    assert rituals.prompt_for_day(1) is rituals.prompts[0]
    assert rituals.prompt_for_day(7) is rituals.prompts[6]


@pytest.mark.parametrize(
    "call",
    [
        lambda lib: lib.week("nope"),
        lambda lib: lib.prompt("nope-1"),
        lambda lib: lib.next_week("nope"),
        lambda lib: lib.first_week().prompt_for_day(0),
        lambda lib: lib.first_week().prompt_for_day(8),
    ],
    ids=["week", "prompt", "next_week", "day-0", "day-8"],
)
def test_unknown_keys_raise_lookup_error(en: Library, call: Any) -> None:
    with pytest.raises(LookupError):
        call(en)


def test_library_is_cached() -> None:
    assert shipped("en") is shipped("en")
    assert shipped("ru") is shipped("ru")


def test_available_languages_lists_english() -> None:
    assert "en" in available_languages()
    assert available_languages() == sorted(available_languages())


@pytest.mark.parametrize(
    "language",
    [
        "../en",
        "..",
        "en/../en",
        "/etc/passwd",
        "en.toml",
        "EN",
        "en\n",
        "",
        "e",
        "engl",
        "xx",
        "de",
        5,
    ],
)
def test_bad_or_unknown_language_is_rejected(language: Any) -> None:
    with pytest.raises(UnknownLanguageError) as info:
        shipped(language)
    assert isinstance(info.value, ValueError)


def test_russian_is_shipped_and_every_language_loads() -> None:
    assert {"en", "ru"} <= set(available_languages())
    for language in available_languages():
        assert shipped(language).language == language


def test_every_translation_keeps_the_english_keys(en: Library) -> None:
    # Same weeks, prompts and practices in the same order, and as many starters per prompt:
    # a stored week or note keeps only keys, and a compose link names a starter by its index.
    def shape(lib: Library) -> list[tuple[str, list[tuple[str, str | None, int]]]]:
        return [
            (week.key, [(p.key, p.practice, len(p.starters)) for p in week.prompts])
            for week in lib.weeks
        ]

    for language in available_languages():
        assert shape(shipped(language)) == shape(en), language


def test_a_translation_has_texts_of_its_own(en: Library) -> None:
    ru = shipped("ru")
    assert ru.first_week().key == en.first_week().key == "wishes"
    assert ru.prompt("wishes-1").title != en.prompt("wishes-1").title
    assert ru.prompt("wishes-1").starters[0].startswith("Мне бы хотелось")


# --- the library of the language in effect ------------------------------------------------


@pytest.fixture(scope="module")
def flask_app() -> Any:
    # Only the locale machinery is needed here: no database is touched.
    from flask import Flask

    from wishnotes import i18n

    app = Flask(__name__)
    i18n.init_app(app)
    return app


def test_outside_a_request_the_default_is_english() -> None:
    assert shipped() is shipped("en")


@pytest.mark.parametrize(
    ("header", "language"),
    [("ru", "ru"), ("ru-RU,ru;q=0.9,en;q=0.8", "ru"), ("en-GB", "en"), ("de", "en"), ("", "en")],
)
def test_a_request_gets_the_library_of_its_language(
    flask_app: Any, header: str, language: str
) -> None:
    with flask_app.test_request_context(headers={"Accept-Language": header}):
        assert shipped() is shipped(language)


def test_an_email_rendered_in_a_language_gets_its_library(flask_app: Any) -> None:
    from wishnotes import i18n

    with flask_app.test_request_context(headers={"Accept-Language": "en"}):
        with i18n.in_language("ru"):
            assert shipped() is shipped("ru")
            assert shipped().prompt("rituals-1").title == "Мне не хватает…"
        assert shipped() is shipped("en")
    with flask_app.app_context(), i18n.in_language("ru"):
        assert shipped() is shipped("ru")


@pytest.mark.parametrize("code", ["de", "xx", "../ru", ""])
def test_a_language_without_a_prompt_file_falls_back_to_english(
    monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    # The interface may come to speak a language before its prompts are translated.
    from wishnotes import i18n

    monkeypatch.setattr(i18n, "current", lambda: code)
    assert shipped() is shipped("en")


# Indiscreet for someone glancing at the phone, or pressuring / blaming in tone.
FORBIDDEN = [
    r"sex",
    r"erotic",
    r"naked",
    r"nude",
    r"porn",
    r"orgasm",
    r"streak",
    r"score",
    r"must\b",
    r"should\b",
    r"fail",
    r"infidel",
    r"affair",
    r"cheat",
    r"betray",
    r"guilt",
    r"punish",
    r"owe[sd]?\b",
    r"dut(y|ies)\b",
    r"obey",
    r"homework",
    r"deadline",
    r"overdue",
    r"therap",
    r"trauma",
    r"you always\b",
    r"you never\b",
]


def _shipped_texts() -> list[tuple[str, str]]:
    texts = []
    for language in available_languages():
        for week in shipped(language).weeks:
            texts += [
                (f"{language}:{week.key}", week.title),
                (f"{language}:{week.key}", week.summary),
            ]
            for prompt in week.prompts:
                where = f"{language}:{prompt.key}"
                texts += [(where, prompt.title), (where, prompt.guidance)]
                texts += [(where, starter) for starter in prompt.starters]
    return texts


@pytest.mark.parametrize("word", FORBIDDEN)
def test_shipped_texts_avoid_indiscreet_or_pressuring_words(word: str) -> None:
    pattern = re.compile(r"\b" + word, re.IGNORECASE)
    hits = [(where, text) for where, text in _shipped_texts() if pattern.search(text)]
    assert hits == []


def test_shipped_texts_use_one_ellipsis_character() -> None:
    assert [where for where, text in _shipped_texts() if "..." in text] == []


# Russian: the same care in Russian words (the English list above cannot see them). «должн»,
# «обязан»: pressure; «измена» and the like: indiscreet; «ты всегда/никогда»: blame.
FORBIDDEN_RU = [
    r"секс",
    r"эроти",
    r"обнаж",
    r"голы[йем]",
    r"порн",
    r"оргазм",
    r"измен[аыуе]\b",
    r"изменой\b",
    r"предатель|предал",
    r"вин[аыуе]\b|виноват",
    r"наказ",
    r"должн|должен",
    r"обязан",
    r"долг\b",
    r"оценк|балл",
    r"задани",
    r"терап",
    r"травм",
    r"ты всегда\b",
    r"ты никогда\b",
]
# Words that would give away a person's gender: short adjectives said of a person in their male
# or female form, and «оба/обе». Texts use the present tense and impersonal forms instead.
GENDERED_RU = (
    r"\b(рады?|рада|готовы?|готова|уверены?|уверена|благодарен|благодарны?|счастливы?|счастлива|"
    r"сам|сама|оба|обе|обоим|обеим|обоих|обеих)\b"
)
# A past-tense verb right after «я», «ты» or «партнёр» («я заметил», «ты сделала», «партнёр
# написал») agrees with that person's gender.
PAST_AFTER_PERSON_RU = r"\b(я|ты|партнёр)\s+(не\s+)?\w+(л|ла|лся|лась)\b"


def _russian_texts() -> list[tuple[str, str]]:
    return [(where, text) for where, text in _shipped_texts() if where.startswith("ru:")]


@pytest.mark.parametrize("word", FORBIDDEN_RU)
def test_russian_texts_avoid_indiscreet_or_pressuring_words(word: str) -> None:
    pattern = re.compile(r"\b" + word, re.IGNORECASE)
    assert [(where, text) for where, text in _russian_texts() if pattern.search(text)] == []


def test_russian_texts_do_not_assume_a_gender() -> None:
    gendered = re.compile(GENDERED_RU, re.IGNORECASE)
    past = re.compile(PAST_AFTER_PERSON_RU, re.IGNORECASE)
    hits = [
        (where, text)
        for where, text in _russian_texts()
        if gendered.search(text) or past.search(text)
    ]
    assert hits == []


def test_russian_typography() -> None:
    # «ёлочки» for quotes, a spaced dash «—» rather than a hyphen.
    bad = re.compile(r"[\"“”„]| - | -- ")
    assert [(where, text) for where, text in _russian_texts() if bad.search(text)] == []


def test_russian_starters_speak_to_the_partner_and_guidance_to_the_user() -> None:
    # Partners say «ты» to each other; the app says «вы» to the person reading.
    ru = shipped("ru")
    you_polite = re.compile(r"\b(вы|вас|вам|вами|ваш\w*)\b", re.IGNORECASE)
    you_familiar = re.compile(r"\b(ты|тебя|тебе|тобой|твой|твоя|твоё|твои|твоих|твоим\w*)\b", re.I)
    for week in ru.weeks:
        assert not you_familiar.search(week.summary), week.key
        for prompt in week.prompts:
            assert not you_familiar.search(prompt.guidance), prompt.key
            assert not you_familiar.search(prompt.title), prompt.key
            for starter in prompt.starters:
                assert not you_polite.search(starter), (prompt.key, starter)


def test_closeness_week_welcomes_a_wish_for_less(en: Library) -> None:
    closeness = en.week("closeness")
    assert "less" in closeness.summary
    assert any("less" in prompt.title.lower() for prompt in closeness.prompts)


# --- the strict loader -------------------------------------------------------------------


def _valid_data() -> dict[str, Any]:
    def week(key: str) -> dict[str, Any]:
        return {
            "key": key,
            "title": f"Week {key}",
            "summary": "A short summary. It has two sentences.",
            "prompts": [
                {
                    "key": f"{key}-{day}",
                    "title": f"Day {day}",
                    "guidance": "One sentence. Two sentences. Three sentences.",
                    "starters": ["I would like…", "It would please me if…", "Let's try…"],
                }
                for day in range(1, 8)
            ],
        }

    return {"language": "en", "format": 1, "weeks": [week("alpha"), week("beta")]}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _dump(data: dict[str, Any]) -> str:
    """Serialise the test data in the shape of the real files ([[weeks]], [[weeks.prompts]])."""
    lines = [
        f"{k} = {_toml_value(v)}" for k, v in data.items() if not (k == "weeks" and _is_tables(v))
    ]
    weeks = data.get("weeks")
    for week in weeks if _is_tables(weeks) else []:
        lines.append("[[weeks]]")
        subtables = _is_tables(week.get("prompts"))
        for k, v in week.items():
            if not (k == "prompts" and subtables):
                lines.append(f"{k} = {_toml_value(v)}")
        for prompt in week["prompts"] if subtables else []:
            lines.append("[[weeks.prompts]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in prompt.items()]
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, data: dict[str, Any], name: str = "en.toml") -> Path:
    path = tmp_path / name
    path.write_text(_dump(data), encoding="utf-8")
    return path


def test_valid_test_data_loads(tmp_path: Path) -> None:
    lib = load_library(_write(tmp_path, _valid_data()))
    assert [week.key for week in lib.weeks] == ["alpha", "beta"]
    assert lib.prompt("beta-4").day == 4
    assert lib.prompt("beta-4").starters == (
        "I would like…",
        "It would please me if…",
        "Let's try…",
    )


def test_multiline_text_is_collapsed_to_one_paragraph(tmp_path: Path) -> None:
    data = _valid_data()
    path = _write(tmp_path, data)
    text = path.read_text(encoding="utf-8").replace(
        '"One sentence. Two sentences. Three sentences."',
        '"""\nOne sentence.\n  Two sentences.   Three sentences.\n"""',
        1,
    )
    path.write_text(text, encoding="utf-8")
    assert load_library(path).prompt("alpha-1").guidance == (
        "One sentence. Two sentences. Three sentences."
    )


def _set(path: str, value: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = data
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _delete(path: str) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = data
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


def _append_prompt(data: dict[str, Any]) -> None:
    extra = copy.deepcopy(data["weeks"][1]["prompts"][0])
    extra["key"] = "beta-8"
    data["weeks"][1]["prompts"].append(extra)


W1 = 'weeks[1] ("beta")'
P13 = 'weeks[1].prompts[3] ("beta-4")'
LONG = "x" * 61

MALFORMED = [
    # format and language
    pytest.param(_delete("format"), "", "missing field 'format'", id="format-missing"),
    pytest.param(_set("format", 2), "", "format must be 1", id="format-wrong"),
    pytest.param(_set("format", "1"), "", "format must be 1", id="format-string"),
    pytest.param(_set("format", True), "", "format must be 1", id="format-bool"),
    pytest.param(_delete("language"), "", "missing field 'language'", id="language-missing"),
    pytest.param(_set("language", "fr"), "", "does not match the file name", id="language-wrong"),
    pytest.param(_set("language", "../en"), "", "language must be", id="language-invalid"),
    pytest.param(_set("language", 5), "", "language must be", id="language-type"),
    # unknown and missing fields
    pytest.param(_set("version", 1), "", "unknown field 'version'", id="unknown-top-field"),
    pytest.param(_set("weeks.1.titel", "x"), W1, "unknown field 'titel'", id="unknown-week-field"),
    pytest.param(
        _set("weeks.1.prompts.3.tip", "x"), P13, "unknown field 'tip'", id="unknown-field"
    ),
    pytest.param(_delete("weeks"), "", "missing field 'weeks'", id="weeks-missing"),
    pytest.param(_delete("weeks.1.summary"), W1, "missing field 'summary'", id="summary-missing"),
    pytest.param(_delete("weeks.1.prompts"), W1, "missing field 'prompts'", id="prompts-missing"),
    pytest.param(_delete("weeks.1.key"), "weeks[1]", "missing field 'key'", id="week-key-missing"),
    pytest.param(
        _delete("weeks.1.prompts.3.guidance"),
        P13,
        "missing field 'guidance'",
        id="guidance-missing",
    ),
    pytest.param(
        _delete("weeks.1.prompts.3.starters"),
        P13,
        "missing field 'starters'",
        id="starters-missing",
    ),
    # wrong types
    pytest.param(_set("weeks", "many"), "", "weeks must be an array of tables", id="weeks-type"),
    pytest.param(_set("weeks", []), "", "weeks must not be empty", id="weeks-empty"),
    pytest.param(_set("weeks.1.prompts", "x"), W1, "prompts must be an array", id="prompts-type"),
    pytest.param(_set("weeks.1.title", 7), W1, "title must be a string", id="week-title-type"),
    pytest.param(_set("weeks.1.key", 7), "weeks[1]", "key must be a string", id="week-key-type"),
    pytest.param(
        _set("weeks.1.prompts.3.guidance", ["a"]), P13, "guidance must be a string", id="guid-type"
    ),
    pytest.param(
        _set("weeks.1.prompts.3.starters", "I would like…"),
        P13,
        "starters must be an array",
        id="starters-type",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.starters.1", 3),
        P13,
        "starters[1] must be a string",
        id="starter-type",
    ),
    # empty strings
    pytest.param(_set("weeks.1.title", ""), W1, "title must not be empty", id="week-title-empty"),
    pytest.param(
        _set("weeks.1.summary", "  \n "), W1, "summary must not be empty", id="summary-blank"
    ),
    pytest.param(
        _set("weeks.1.prompts.3.title", ""), P13, "title must not be empty", id="title-empty"
    ),
    pytest.param(
        _set("weeks.1.prompts.3.guidance", " "), P13, "guidance must not be empty", id="guid-empty"
    ),
    pytest.param(
        _set("weeks.1.prompts.3.starters.2", ""),
        P13,
        "starters[2] must not be empty",
        id="starter-empty",
    ),
    pytest.param(_set("weeks.1.key", ""), "weeks[1]", "key must not be empty", id="week-key-empty"),
    # keys
    pytest.param(
        _set("weeks.1.key", "Beta Week"),
        'weeks[1] ("Beta Week")',
        "lowercase slug",
        id="week-key-not-slug",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.key", "beta_4"),
        'weeks[1].prompts[3] ("beta_4")',
        "lowercase slug",
        id="prompt-key-not-slug",
    ),
    pytest.param(
        _set("weeks.1.key", "alpha"),
        'weeks[1] ("alpha")',
        "duplicate week key 'alpha' (also weeks[0]",
        id="duplicate-week-key",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.key", "alpha-2"),
        'weeks[1].prompts[3] ("alpha-2")',
        "duplicate prompt key 'alpha-2'",
        id="duplicate-prompt-key-across-weeks",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.key", "beta-1"),
        'weeks[1].prompts[3] ("beta-1")',
        "duplicate prompt key 'beta-1'",
        id="duplicate-prompt-key-in-week",
    ),
    # seven prompts a week
    pytest.param(_delete("weeks.1.prompts.6"), W1, "exactly 7 prompts (has 6)", id="six-prompts"),
    pytest.param(_append_prompt, W1, "exactly 7 prompts (has 8)", id="eight-prompts"),
    # starters
    pytest.param(
        _set("weeks.1.prompts.3.starters", ["I would like…", "Let's try…"]),
        P13,
        "starters must have at least 3 entries",
        id="two-starters",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.starters.0", "I would like"),
        P13,
        'starters[0] must end with "…"',
        id="starter-no-ellipsis",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.starters.0", "I would like..."),
        P13,
        'must end with "…"',
        id="starter-three-dots",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.starters.2", "I would like…"),
        P13,
        "starters[2] repeats",
        id="starter-duplicate",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.starters.1", "a" * 80 + "…"),
        P13,
        "starters[1] must be at most 80 characters",
        id="starter-too-long",
    ),
    # lengths and sentences
    pytest.param(
        _set("weeks.1.prompts.3.guidance", "One. Two! Three? Four."),
        P13,
        "guidance must be at most 3 sentences (has 4)",
        id="guidance-four-sentences",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.guidance", "One. Two. Three. Four"),
        P13,
        "guidance must be at most 3 sentences (has 4)",
        id="guidance-unterminated-fourth",
    ),
    pytest.param(
        _set("weeks.1.prompts.3.guidance", "word " * 80 + "end."),
        P13,
        "guidance must be at most 400 characters",
        id="guidance-too-long",
    ),
    pytest.param(
        _set("weeks.1.summary", "One. Two. Three."),
        W1,
        "summary must be at most 2 sentences",
        id="summary-three-sentences",
    ),
    pytest.param(
        _set("weeks.1.title", LONG), W1, "title must be at most 60 characters", id="week-title-long"
    ),
    pytest.param(
        _set("weeks.1.prompts.3.title", LONG),
        P13,
        "title must be at most 60 characters",
        id="prompt-title-long",
    ),
]


@pytest.mark.parametrize(("mutate", "entry", "fragment"), MALFORMED)
def test_malformed_file_names_file_and_entry(
    tmp_path: Path, mutate: Any, entry: str, fragment: str
) -> None:
    data = _valid_data()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(PromptLibraryError) as info:
        load_library(path)
    message = str(info.value)
    prefix = f"en.toml: {entry}: " if entry else "en.toml: "
    assert message.startswith(prefix), message
    assert fragment in message, message
    assert isinstance(info.value, ValueError)


def test_sentence_count_ignores_quoted_starters_and_closing_quotes(tmp_path: Path) -> None:
    data = _valid_data()
    guidance = "Begin with “I miss…” and keep going. Say “not yet.” Then rest."
    _set("weeks.0.prompts.0.guidance", guidance)(data)
    assert load_library(_write(tmp_path, data)).prompt("alpha-1").guidance == guidance


def test_exactly_sixty_character_title_and_400_character_guidance_are_allowed(
    tmp_path: Path,
) -> None:
    data = _valid_data()
    _set("weeks.0.title", "x" * 60)(data)
    _set("weeks.0.prompts.0.guidance", "x" * 399 + ".")(data)
    lib = load_library(_write(tmp_path, data))
    assert len(lib.first_week().title) == 60


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "en.toml"
    path.write_text('language = "en"\nformat = 1\n[[weeks]\n', encoding="utf-8")
    with pytest.raises(PromptLibraryError, match=r"^en\.toml: invalid TOML: ") as info:
        load_library(path)
    assert info.value.__cause__ is not None


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "en.toml"
    path.write_bytes(b'language = "\xff"\n')
    with pytest.raises(PromptLibraryError, match=r"^en\.toml: "):
        load_library(path)


def test_loader_names_a_translation_file_by_its_own_name(tmp_path: Path) -> None:
    data = _valid_data()
    data["language"] = "de"
    _set("weeks.1.prompts.3.starters", ["Ich möchte…"])(data)
    with pytest.raises(PromptLibraryError) as info:
        load_library(_write(tmp_path, data, name="de.toml"))
    assert str(info.value) == (
        'de.toml: weeks[1].prompts[3] ("beta-4"): starters must have at least 3 entries'
    )


def test_import_only_defines_things(monkeypatch: pytest.MonkeyPatch) -> None:
    # Load a fresh copy of the module file: nothing may be read until a library is asked for.
    spec = importlib.util.spec_from_file_location("prompts_fresh_copy", prompts.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    assert module._shipped_library.cache_info().currsize == 0
    # A fresh copy has its own classes, so compare content rather than objects.
    assert module.shipped("en").first_week().key == shipped("en").first_week().key
    assert module._shipped_library.cache_info().currsize == 1
