# Russian words are asserted on purpose: Cyrillic letters that look like Latin ones are meant.
# ruff: noqa: RUF001
"""The practices and the wish cards speak the language of the person reading them.

A pair whose accounts are set to Russian sees the Together hub, the Table of Trust, a place of
their own, agreements, the listening timer and the wish cards in Russian (words, plural forms,
dates); the same pages for an English pair read as before.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from wishnotes import cards
from wishnotes.extensions import db
from wishnotes.models import Agreement, Place, RitualItem, User

from .conftest import login, pair_users, post_form, register_user

RU_MONTH = re.compile(
    r"\d{1,2} (января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря)"
)
EN_MONTH = re.compile(
    r"\d{1,2} (January|February|March|April|May|June|July|August|September|October|November|"
    r"December)"
)


def couple(app, language: str):
    """Ada and Bo, paired, their accounts in `language`, each signed in in their own browser."""
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    with app.app_context():
        for user in db.session.scalars(select(User)):
            user.language = language
        db.session.commit()
    ada, bo = app.test_client(), app.test_client()
    login(ada)
    login(bo, email="bo@example.com")
    return ada, bo


def text(response) -> str:
    assert response.status_code in (200, 422), response.status_code
    return response.get_data(as_text=True)


def one(app, model):
    with app.app_context():
        return db.session.scalars(select(model)).one()


def in_language(page: str, language: str) -> bool:
    return f'<html lang="{language}"' in page


# --- Russian ---------------------------------------------------------------------------------


@pytest.fixture
def russians(app):
    return couple(app, "ru")


def test_the_together_hub_and_its_news_read_in_russian(app, russians):
    ada, bo = russians
    hub = text(ada.get("/together/"))
    assert in_language(hub, "ru")
    for words in ("Вместе", "Стол доверия", "Наше место", "Договорённости", "для вас двоих"):
        assert words in hub
    for english in ("Our table", "A place of our own", "Agreements", "mutual wish"):
        assert english not in hub
    post_form(ada, "/together/table/", {"text": "Мне не хватает воскресных блинчиков"})
    assert "Ada: новое на столе доверия" in text(bo.get("/"))


def test_the_table_of_trust_reads_in_russian_with_russian_dates(app, russians):
    ada, bo = russians
    page = text(ada.get("/together/table/"))
    assert in_language(page, "ru") and "Стол доверия" in page
    assert "На столе пока пусто" in page
    assert re.search(r'<textarea[^>]*name="text"[^>]*>\s*Мне не хватает ', page)
    # A shared wish card brings its words, in Russian, into a whole Russian sentence.
    wished = text(ada.get("/together/table/?wish=time-slow-breakfast"))
    assert "Мне не хватает вот чего: неспешный завтрак в свободное утро" in wished
    added = post_form(ada, "/together/table/", {"text": "Мне не хватает воскресных блинчиков"})
    assert added.status_code == 302
    assert "Готово, теперь это на столе доверия." in text(ada.get("/together/table/"))
    item = one(app, RitualItem)
    seen_by_bo = text(bo.get("/together/table/"))
    assert "Пишет Ada" in seen_by_bo and "Вернём это" in seen_by_bo
    assert "Ваша запись" in text(ada.get("/together/table/"))
    planned = (date.today() + timedelta(days=3)).isoformat()
    post_form(ada, f"/together/table/{item.id}/plan", {"day": planned}, token_from="/together/")
    page = text(ada.get("/together/table/"))
    assert "День назначен." in page
    assert re.search(r"Запланировано на <time[^>]*>" + RU_MONTH.pattern, page)
    assert not EN_MONTH.search(page)
    future = (date.today() + timedelta(days=5)).isoformat()
    refused = post_form(
        bo, f"/together/table/{item.id}/done", {"day": future}, token_from="/together/"
    )
    assert refused.status_code == 422 and "сегодня или раньше" in text(refused)
    post_form(ada, f"/together/table/{item.id}/archive", token_from="/together/")
    archive = text(ada.get("/together/table/archive"))
    assert "Архив стола доверия" in archive and "Вернуть на стол" in archive


def test_a_place_of_our_own_reads_in_russian(app, russians):
    ada, bo = russians
    empty = text(ada.get("/together/place/"))
    assert in_language(empty, "ru") and "Начать новое место" in empty
    post_form(ada, "/together/place/start", {"name": "Бухта"}, token_from="/together/place/")
    place = one(app, Place)
    mine = text(ada.get("/together/place/"))
    assert "Ваша очередь" in mine and "Название, придуманное вами" in mine
    assert "Your turn" not in mine
    theirs = text(bo.get("/together/place/"))
    assert "Сейчас пишет Ada" in theirs and "Название, придуманное партнёром" in theirs
    early = post_form(
        bo, f"/together/place/{place.id}/turn", {"text": "Тёплый песок"}, token_from="/together/"
    )
    assert early.status_code == 422 and "Ваши строки, сохранённые до вашей очереди" in text(early)
    blank = post_form(ada, f"/together/place/{place.id}/turn", {"text": " "}, token_from="/")
    assert blank.status_code == 422
    post_form(ada, f"/together/place/{place.id}/end", token_from="/together/place/")
    ended = text(ada.get(f"/together/place/{place.id}"))
    assert "Начато <time" in ended and "завершено <time" in ended and RU_MONTH.search(ended)


def test_agreements_and_the_listening_timer_read_in_russian(app, russians):
    ada, bo = russians
    today = date.today().isoformat()
    proposed = post_form(
        ada,
        "/together/agreements/new",
        {"shipped": "own", "text": "Без телефонов за ужином", "starts_on": today, "ends_on": ""},
    )
    assert proposed.status_code == 302
    page = text(ada.get("/together/agreements/"))
    assert in_language(page, "ru")
    assert "Ваше предложение ждёт ответа партнёра" in page
    assert ">предложено<" in page and "Ваше предложение" in page and "Принимаю" not in page
    theirs = text(bo.get("/together/agreements/"))
    assert "Предложение вам" in theirs and "Принимаю" in theirs
    assert re.search(r"с <time[^>]*>" + RU_MONTH.pattern, theirs)
    agreement = one(app, Agreement)
    post_form(bo, f"/together/agreements/{agreement.id}/accept", token_from="/together/")
    assert ">действует<" in text(ada.get("/together/agreements/"))
    post_form(ada, f"/together/agreements/{agreement.id}/end", token_from="/together/")
    assert ">завершено<" in text(bo.get("/together/agreements/"))
    late = (date.today() - timedelta(days=1)).isoformat()
    refused = post_form(
        ada,
        "/together/agreements/new",
        {"shipped": "own", "text": "Прогулка", "starts_on": today, "ends_on": late},
    )
    assert refused.status_code == 422
    assert "Последний день не может быть раньше первого." in text(refused)
    timer = text(ada.get("/together/agreements/listen?minutes=5&speaker=partner"))
    assert "Говорит <strong>Bo</strong>. <strong>Вы</strong> слушаете" in timer


def test_the_wish_cards_read_in_russian_with_plural_forms(app, russians):
    ada, bo = russians
    first = cards.deck().keys[0]
    index = text(ada.get("/wishes/"))
    assert in_language(index, "ru") and "Карточки желаний" in index
    assert "Начать с первой карточки" in index and "<strong>Не для меня</strong>" in index
    card = text(ada.get(f"/wishes/cards/{first}"))
    assert ">Может быть</button>" in card and "Пропустить карточку" in card
    post_form(ada, f"/wishes/cards/{first}", {"choice": "maybe"})
    answered = text(ada.get(f"/wishes/cards/{first}"))
    assert "Ваш ответ: «Может быть»." in answered
    assert "можно изменить ещё 5 ответов." in answered
    post_form(ada, f"/wishes/cards/{first}", {"choice": "yes"})
    changed = text(ada.get(f"/wishes/cards/{first}"))
    assert "можно изменить ещё 4 ответа." in changed
    assert "Новый ответ начнёт учитываться завтра." in changed
    assert "Ваш ответ: «Да»" in text(ada.get("/wishes/cards"))
    # Ada's change counts from tomorrow: today her "maybe" meets Bo's "yes".
    post_form(bo, f"/wishes/cards/{first}", {"choice": "yes"})
    both = text(bo.get("/wishes/both"))
    assert "Что хочется вам двоим" in both and "Стоит обсудить" in both
    assert "Здесь одно «да» и одно «может быть»." in both and "Новая" in both
    assert "What you both want" not in both


# --- English, as before ----------------------------------------------------------------------


def test_an_english_pair_reads_the_same_pages_in_english(app):
    ada, bo = couple(app, "en")
    hub = text(ada.get("/together/"))
    assert in_language(hub, "en") and "Our table" in hub and "Стол доверия" not in hub
    table = text(ada.get("/together/table/"))
    assert re.search(r'<textarea[^>]*name="text"[^>]*>\s*I miss ', table)
    post_form(ada, "/together/table/", {"text": "I miss our walks"})
    item = one(app, RitualItem)
    planned = (date.today() + timedelta(days=3)).isoformat()
    post_form(bo, f"/together/table/{item.id}/plan", {"day": planned}, token_from="/together/")
    page = text(bo.get("/together/table/"))
    assert "Ada added this" in page
    assert re.search(r"Planned for <time[^>]*>" + EN_MONTH.pattern, page)
    post_form(ada, "/together/place/start", {"name": ""}, token_from="/together/place/")
    assert "Ada's turn" in text(bo.get("/together/place/"))
    agreements = text(ada.get("/together/agreements/"))
    assert "No agreements yet. There is no hurry." in agreements
    first = cards.deck().keys[0]
    post_form(ada, f"/wishes/cards/{first}", {"choice": "maybe"})
    answered = text(ada.get(f"/wishes/cards/{first}"))
    assert "Your answer: Maybe." in answered and "You can change 5 more this week." in answered
    assert "What you both want" in text(ada.get("/wishes/both"))
