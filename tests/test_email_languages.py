# ruff: noqa: RUF001 - Russian words are the point here (Cyrillic letters that look Latin)
"""Each person reads their own language: emails (subject, body, prompts, dates) and pages.

The emails go through the real SMTP server of tests/smtp.py. The Russian words checked are the
catalog's own (wishnotes/translations); the prompt texts come from a stand-in library, so these
tests hold whether or not a Russian prompt file ships.
"""

from __future__ import annotations

import gettext
import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import wishnotes
from wishnotes import mail, program, prompts
from wishnotes.extensions import db
from wishnotes.models import Note, OutboxVariant, User

from . import test_email_delivery as delivery
from .conftest import csrf_token, login, pair_users, post_form, register_user, start_agreed_week
from .test_email_delivery import T0, scheduler_pass
from .test_schedule import make_pair, set_emails

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
RU_MARK = "[ru] "  # what the stand-in Russian library puts before every prompt and theme title
mail_app = delivery.mail_app  # a fixture: the app with a real SMTP server and job queue
CATALOG = Path(wishnotes.__file__).parent / "translations/ru/LC_MESSAGES/messages.mo"


def _catalog_built() -> bool:
    if not CATALOG.is_file():
        return False
    with CATALOG.open("rb") as file:
        return gettext.GNUTranslations(file).gettext("Open the app") != "Open the app"


# The words checked here are the compiled ru catalog's (wishnotes/translations).
pytestmark = pytest.mark.skipif(not _catalog_built(), reason="the ru catalog is not compiled")


@pytest.fixture
def russian_prompts(monkeypatch):
    """A Russian prompt library: the English one with every title marked, whatever ships."""
    shipped = prompts.shipped
    english = shipped("en")
    weeks = tuple(
        replace(
            week,
            title=RU_MARK + week.title,
            prompts=tuple(replace(p, title=RU_MARK + p.title) for p in week.prompts),
        )
        for week in english.weeks
    )
    russian = prompts.Library(language="ru", weeks=weeks)

    def fake(language=None, *args, **kwargs):
        if language == "ru":
            return russian
        return shipped(language, *args, **kwargs) if language else shipped(*args, **kwargs)

    monkeypatch.setattr(prompts, "shipped", fake)
    return russian


def set_language(app, user_id: int, language: str, **emails) -> None:
    with app.app_context():
        user = db.session.get(User, user_id)
        if emails:
            set_emails(user, **emails)
        user.language = language
        db.session.commit()


def received_by(server, address: str) -> list:
    return [message for message in server.messages if message["To"] == address]


def bodies(message) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_a_ru_and_an_en_partner_due_in_one_pass_each_get_their_own_language(
    mail_app, smtp_server, russian_prompts
):
    # Ada reads Russian, Bo (her partner) English: one week, one hour, two languages.
    ada, bo = make_pair(mail_app, "ada", "bo", daily_email=True, daily_hour=18)
    cy, di = make_pair(mail_app, "cy", "di", daily_email=True, daily_hour=18)
    for user_id in (ada, cy):
        set_language(mail_app, user_id, "ru", discreet_subjects=False)
    for user_id in (bo, di):
        set_language(mail_app, user_id, "en", discreet_subjects=False)
    with mail_app.app_context():
        for user_id in (ada, cy):
            start_agreed_week(
                user=db.session.get(User, user_id),
                theme_key="closeness",
                start_date=date(2026, 2, 26),
                timezone="UTC",
                now=T0,
            )
        english = prompts.shipped("en").week("closeness")
    scheduler_pass(mail_app, T0)  # Sunday 18:00: the weekly email, day 4
    scheduler_pass(mail_app, T0 + timedelta(days=1))  # Monday: the daily one, day 5

    for address in ("ada@example.com", "cy@example.com"):
        weekly, daily = received_by(smtp_server, address)
        name = address.split("@")[0].title()
        assert weekly["Subject"] == f"Тема недели: {RU_MARK}{english.title}"
        assert daily["Subject"] == f"Подсказка на сегодня: {RU_MARK}{english.prompts[4].title}"
        for message in (weekly, daily):
            text, html = bodies(message)
            assert f"Здравствуйте, {name}!" in text and '<html lang="ru">' in html
            assert "Открыть приложение" in text and "Hello" not in text + html
        text, html = bodies(weekly)
        assert f"Тема этой недели — «{RU_MARK}{english.title}»" in text
        assert f"Сегодня день 4: {RU_MARK}{english.prompts[3].title}." in text
        assert "Отключить еженедельную сводку" in html
        assert f"День 5: {RU_MARK}{english.prompts[4].title}" in bodies(daily)[0]

    for address in ("bo@example.com", "di@example.com"):
        weekly, daily = received_by(smtp_server, address)
        assert weekly["Subject"] == f"This week's theme: {english.title}"
        assert daily["Subject"] == f"Today's prompt: {english.prompts[4].title}"
        for message in (weekly, daily):
            text, html = bodies(message)
            assert not CYRILLIC.search(message["Subject"] + text + html)
            assert RU_MARK not in text and '<html lang="en">' in html
    with mail_app.app_context():
        # Rendered once per language and kind, not once per person.
        assert db.session.scalar(select(func.count()).select_from(OutboxVariant)) == 4


def test_discreet_russian_emails_name_nothing_and_dates_read_in_each_language(
    mail_app, smtp_server, russian_prompts
):
    ada, bo = make_pair(mail_app, "ada", "bo")
    cy, _ = make_pair(mail_app, "cy", "di")
    set_language(mail_app, ada, "ru")  # discreet subjects: the default
    set_language(mail_app, bo, "en", discreet_subjects=False)
    set_language(mail_app, cy, "ru", discreet_subjects=False)
    with mail_app.app_context():
        for user_id in (ada, cy):  # upcoming weeks: the email names the first day
            start_agreed_week(
                user=db.session.get(User, user_id),
                theme_key="closeness",
                start_date=date(2026, 3, 9),
                timezone="UTC",
                now=T0,
            )
        db.session.get(User, bo).display_name = "Rosalind"
        db.session.commit()
        title = prompts.shipped("en").week("closeness").title
    scheduler_pass(mail_app, T0)

    (to_ada,) = received_by(smtp_server, "ada@example.com")
    assert to_ada["Subject"] == "Ваша сводка за неделю"
    text, html = bodies(to_ada)
    assert "Ваша сводка за неделю. Догонять ничего не нужно" in text
    for word in ("партн", "пар", "rosalind", "closeness", RU_MARK.strip()):
        assert word not in (text + html).lower(), word
    (to_cy,) = received_by(smtp_server, "cy@example.com")
    upcoming = f"Первый день вашей недели «{RU_MARK}{title}» — понедельник, 9 марта."
    assert upcoming in bodies(to_cy)[0]
    (to_bo,) = received_by(smtp_server, "bo@example.com")
    assert f'Your week "{title}" begins on Monday, 9 March.' in bodies(to_bo)[0]


def test_the_note_notice_is_in_the_recipients_language_not_the_writers(mail_app, smtp_server):
    ada, bo = make_pair(mail_app, "ada", "bo", weekly_hour=3)
    set_language(mail_app, ada, "ru")
    set_language(mail_app, bo, "en")
    # Bo writes from English pages; the notice to Ada is Russian, and the other way round.
    bo_client, ada_client = mail_app.test_client(), mail_app.test_client()
    login(bo_client, email="bo@example.com")
    login(ada_client, email="ada@example.com")
    assert post_form(bo_client, "/notes/new", {"body": "Let's cook on Friday."}).status_code == 302
    assert post_form(ada_client, "/notes/new", {"body": "Давай!"}).status_code == 302
    scheduler_pass(mail_app, T0 + timedelta(minutes=15))

    (to_ada,) = received_by(smtp_server, "ada@example.com")
    assert to_ada["Subject"] == "У вас новая записка"
    text, html = bodies(to_ada)
    assert "У вас новая записка. Войдите, чтобы её прочитать" in text
    assert "Отключить эти письма" in html and '<html lang="ru">' in html
    (to_bo,) = received_by(smtp_server, "bo@example.com")
    assert to_bo["Subject"] == "You have a new note"
    text, html = bodies(to_bo)
    assert not CYRILLIC.search(text + html) and "Stop these emails" in text


def test_the_password_reset_email_goes_in_the_accounts_language(mail_app, smtp_server):
    ada, _ = register_user(mail_app, "ada@example.com", "Ada")
    set_language(mail_app, ada, "ru")
    # Asked for from a browser that shows English: the account's language decides.
    client = mail_app.test_client()
    headers = {"Accept-Language": "en"}
    token = csrf_token(client, "/forgot")
    page = client.post(
        "/forgot", data={"email": "ada@example.com", "csrf_token": token}, headers=headers
    )
    assert page.status_code == 200
    scheduler_pass(mail_app, T0)
    (message,) = received_by(smtp_server, "ada@example.com")
    assert message["Subject"] == "Сбросить пароль"
    text, html = bodies(message)
    assert "Здравствуйте, Ada!" in text and "Мы получили запрос на сброс пароля." in text
    assert "Если вы не запрашивали сброс" in html and '<html lang="ru">' in html
    assert re.search(r"https://example\.org/reset/\S+", text)


def test_bulk_variants_are_keyed_by_language(app_ctx):
    merge = mail.MailMerge()
    subject = mail.Subject("weekly_idle", True)
    args = {"slots": ("name",), "discreet": True, "state": None, "theme": None, "day": None}
    args |= {"prompt": None, "starts_on": None, "news": False}
    args |= {"open_url": "https://x/", "settings_url": "https://x/s", "unsubscribe_url": "u"}
    english = merge.variant("weekly", language="en", subject=subject, **args)
    russian = merge.variant("weekly", language="ru", subject=subject, **args)
    assert english is merge.variant("weekly", language="en", subject=subject, **args)
    assert english.subject == "Your weekly summary"
    assert russian.subject == "Ваша сводка за неделю" and "Здравствуйте" in russian.text


# --- pages ---------------------------------------------------------------------------------


@pytest.fixture
def russian_couple(app):
    """Ada (Russian pages) and Bo (English pages), paired and signed in, a week under way."""
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    set_language(app, ada_id, "ru")
    app.config["NOW"] = T0
    ada, bo = app.test_client(), app.test_client()
    login(ada)
    login(bo, email="bo@example.com")
    return ada, bo


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_notes_pairing_and_week_pages_are_russian_for_a_russian_reader(app, russian_couple):
    ada, bo = russian_couple
    post_form(bo, "/notes/new", {"body": "I would like us to cook together."})
    with app.app_context():
        note_id = db.session.scalar(select(Note.id))
    expected = {
        "/notes/": ("Записки для вас", "Написать записку", "От: Bo", "Новая"),
        f"/notes/{note_id}": ("Bo пишет вам", "Поговорим об этом", "К запискам"),
        "/notes/new": ("Написать записку", "Отправить записку", "Не сейчас"),
        "/pair/": ("Ваш партнёр", "Ваша пара: вы и <strong>Bo</strong>.", "Завершить пару…"),
        "/week/": ("Ваша неделя", "Неделя — это семь дней небольших подсказок"),
    }
    for path, phrases in expected.items():
        html = page(ada, path)
        assert '<html lang="ru"' in html, path
        for phrase in phrases:
            assert phrase in html, (path, phrase)
    for english in ("Notes for you", "Write a note", "Your partner", "Your week", "From Bo"):
        assert english not in page(ada, "/notes/") + page(ada, "/pair/") + page(ada, "/week/")
    # Ada's language is hers alone: Bo's pages stay English.
    assert "Notes you wrote" in page(bo, "/notes/sent") and "Your week" in page(bo, "/week/")


def test_a_russian_week_page_names_its_first_day_and_todays_prompt_in_russian(app, russian_couple):
    ada, bo = russian_couple
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email="ada@example.com"))
        start = {"theme_key": "closeness", "timezone": "UTC", "now": T0}
        start_agreed_week(user=user, start_date=date(2026, 3, 9), **start)
    html = page(ada, "/week/")
    assert "Первый день недели — понедельник, 9 марта." in html
    assert "Поставить неделю на паузу" in html
    assert "Your week begins on Monday, 9 March." in page(bo, "/week/")
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email="ada@example.com"))
        program.finish_week(user=user, now=T0)
        start_agreed_week(user=user, start_date=T0.date() - timedelta(days=1), **start)
    html = page(ada, "/week/")
    assert "День 2 из 7." in html and "Подсказка на сегодня · день 2" in html


def test_russian_note_errors_say_why_in_russian_and_keep_the_words(app, russian_couple):
    ada, _ = russian_couple
    words = "x" * 4001
    response = post_form(ada, "/notes/new", {"body": words})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Пожалуйста, уложитесь в 4\xa0000 символов — сейчас в записке 4\xa0001." in html
    assert words in html
