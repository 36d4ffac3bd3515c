"""The Russian wish cards: the same deck as the English one, shown in the language in effect."""
# ruff: noqa: RUF001, RUF003 (Russian text: Cyrillic letters that look like Latin ones)

from __future__ import annotations

import re

import pytest

from wishnotes import cards, datafiles, i18n
from wishnotes.extensions import db

from .test_notes import make_person, pair
from .test_wishes import CARD, _signed_in, found, say


def _shape(deck: cards.Deck) -> list[tuple[str, bool, tuple[str, ...]]]:
    return [(t.key, t.intimate, tuple(c.key for c in t.cards)) for t in deck.themes]


@pytest.fixture
def people(app_ctx):
    """Ada and Bo are a pair."""
    folks = {name: make_person(app_ctx, name) for name in ("ada", "bo")}
    pair(folks["ada"], folks["bo"])
    return folks


@pytest.fixture
def fresh_decks():
    """Forget the decks read so far, before and after (a test may point DATA_DIR elsewhere)."""
    cards._shipped.cache_clear()
    datafiles.languages.cache_clear()
    yield
    cards._shipped.cache_clear()
    datafiles.languages.cache_clear()


# --- the file ---------------------------------------------------------------------------------


def test_the_russian_deck_has_the_english_themes_cards_order_and_flags():
    en, ru = cards.deck("en"), cards.deck("ru")
    assert ru.language == "ru" and _shape(ru) == _shape(en)
    assert [t.key for t in ru.themes if t.intimate] == ["closer"]
    assert [c.intimate for c in ru.cards(intimate=True)] == [
        c.intimate for c in en.cards(intimate=True)
    ]
    assert len(ru.cards(intimate=False)) == len(en.cards(intimate=False))


def test_every_russian_text_is_translated_and_typeset():
    ru, en = cards.deck("ru"), cards.deck("en")
    texts = [t.title for t in ru.themes] + [c.text for c in ru.cards(intimate=True)]
    english = {t.title for t in en.themes} | {c.text for c in en.cards(intimate=True)}
    assert not set(texts) & english
    for text in texts:
        assert re.search("[а-яё]", text, re.IGNORECASE), text
        assert not re.search(r"[A-Za-z\"'“”„]|\.\.\.| - |--", text), text  # «», —, …
        # Words that would give a person a gender: "both" agrees (оба/обе), so none of it.
        assert not re.search(r"\b(оба|обе|обоих|обеих|обоим|обеим)\b", text, re.I), text


def test_a_translation_that_drifts_from_the_english_keys_is_refused(
    tmp_path, monkeypatch, fresh_decks
):
    source = cards.DATA_DIR
    (tmp_path / "en.toml").write_text((source / "en.toml").read_text("utf-8"), "utf-8")
    russian = (source / "ru.toml").read_text("utf-8")
    (tmp_path / "ru.toml").write_text(
        russian.replace('key = "closer-shower"', 'key = "closer-bath"'), "utf-8"
    )
    monkeypatch.setattr(cards, "DATA_DIR", tmp_path)
    with pytest.raises(cards.DeckError, match=r"missing \['closer-shower'\].*closer-bath"):
        cards.deck("ru")
    assert cards.deck("en").language == "en"


# --- the language in effect -------------------------------------------------------------------


def test_the_deck_follows_the_language_in_effect(app_ctx):
    assert cards.deck().language == "en"  # no request, no email: English
    with i18n.in_language("ru"):
        assert cards.deck().language == "ru"
        assert cards.find(CARD).text == "Неспешный завтрак в свободное утро"
        assert cards.find("no-such-card") is None and cards.find(None) is None
    assert cards.find(CARD).text == "A slow breakfast on a free morning"
    assert cards.deck() is cards.deck("en")  # one parse per language
    with i18n.in_language("ru"):
        assert cards.deck() is cards.deck("ru")


@pytest.mark.parametrize(
    ("header", "language"),
    [("ru", "ru"), ("ru-RU,ru;q=0.9,en;q=0.8", "ru"), ("de", "en"), (None, "en")],
)
def test_a_visitor_gets_the_deck_of_their_browser_language(app, header, language):
    headers = {"Accept-Language": header} if header else {}
    with app.test_request_context("/", headers=headers):
        assert cards.deck().language == language
        assert cards.find(CARD) == cards.deck(language).card(CARD)


def test_an_unknown_language_gets_the_english_deck():
    english = cards.deck("en")
    for code in ("de", "xx", "EN", "ru_RU", "", None):
        expected = cards.deck("ru") if code == "ru_RU" else english
        assert cards.deck(code) is expected


# --- a pair who read different languages ------------------------------------------------------


def test_partners_in_two_languages_match_on_the_same_card_each_in_their_own(app, people):
    ada, bo = people["ada"], people["bo"]
    ada.user.language = "ru"
    db.session.commit()
    with i18n.in_language("ru"):
        say(ada, CARD, "yes")
    say(bo, CARD, "yes")
    assert found(ada) == found(bo) == {CARD: "shared"}

    russian, english = cards.deck("ru").card(CARD).text, cards.deck("en").card(CARD).text
    assert russian != english
    for email, mine, theirs in (("ada", russian, english), ("bo", english, russian)):
        with app.app_context():
            client = _signed_in(app, f"{email}@example.com")
        for url in ("/wishes/both", f"/wishes/cards/{CARD}"):
            page = _fresh_get(app, client, url)
            assert mine in page and theirs not in page


def _fresh_get(app, client, url: str) -> str:
    """GET in an app context of its own, as a server does: the test's context would carry one
    person's sign-in and language into the next request."""
    with app.app_context():
        return client.get(url).get_data(as_text=True)
