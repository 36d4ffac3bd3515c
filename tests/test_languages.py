# ruff: noqa: RUF001 - Russian words are what these tests read
"""The language of the pages: the browser's before sign-in, a visitor's choice, then the account's.

These tests read Russian words from the compiled catalog (`wishnotes/translations`).
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import event

from wishnotes.extensions import db
from wishnotes.models import User

from .conftest import PASSWORD, login, pair_users, post_form, register_user
from .test_outages import outage_app  # noqa: F401 - a fixture: a database that can be cut

RU = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}
HTML_RU = '<html lang="ru"'
HTML_EN = '<html lang="en"'


def _page(response) -> str:
    return response.get_data(as_text=True)


def _language_of(app, user_id: int) -> str:
    with app.app_context():
        return db.session.get(User, user_id).language


def _choose(client, code: str, *, next_url: str, token_from: str, **kw):
    return post_form(
        client, "/language", {"language": code, "next": next_url}, token_from=token_from, **kw
    )


# --- before sign-in: the browser's language --------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/register"])
def test_a_russian_browser_gets_russian_sign_in_and_registration_pages(client, path):
    page = _page(client.get(path, headers=RU))
    assert HTML_RU in page
    assert "Войти" in page
    assert "Password" not in page and "Sign in" not in page
    # The way back to English is offered, named in English.
    assert re.search(r'name="language" value="en" lang="en">English</button>', page)


@pytest.mark.parametrize("header", [None, "en-US,en;q=0.9", "de-DE,de;q=0.9", "*"])
@pytest.mark.parametrize("path", ["/login", "/register"])
def test_every_other_browser_gets_english(client, path, header):
    page = _page(client.get(path, headers={"Accept-Language": header} if header else {}))
    assert HTML_EN in page
    assert "Sign in" in page
    assert re.search(r'name="language" value="ru" lang="ru">Русский</button>', page)


def test_a_registration_made_on_a_russian_page_stores_russian(app, client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = RU["Accept-Language"]
    response = post_form(
        client,
        "/register",
        {"email": "ada@example.com", "display_name": "Ада", "password": PASSWORD},
    )
    assert response.status_code == 200
    assert HTML_RU in _page(response)  # the recovery kit, in Russian
    assert "Ваш набор для восстановления" in _page(response)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "ada@example.com"))
        assert user.language == "ru"


def test_a_registration_made_on_an_english_page_stores_english(app, client):
    post_form(
        client, "/register", {"email": "bo@example.com", "display_name": "Bo", "password": PASSWORD}
    )
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "bo@example.com"))
        assert user.language == "en"


def test_russian_form_errors_and_validator_messages(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = RU["Accept-Language"]
    response = post_form(client, "/login", {"email": "", "password": ""})
    page = _page(response)
    assert response.status_code == 422
    assert "Введите, пожалуйста, адрес почты." in page
    assert "Введите пароль." in page
    wrong = _page(post_form(client, "/login", {"email": "x@example.com", "password": "nope"}))
    assert "Почта и пароль не подходят ни к одному аккаунту." in wrong


# --- a visitor's choice ----------------------------------------------------------------------


def test_a_visitors_choice_sets_the_cookie_and_wins_over_the_browser(client):
    response = _choose(client, "en", next_url="/login", token_from="/login", headers=RU)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("wn_lang=en;") and "HttpOnly" in cookie
    assert HTML_EN in _page(client.get("/login", headers=RU))

    _choose(client, "ru", next_url="/register", token_from="/login")
    assert HTML_RU in _page(client.get("/register", headers={"Accept-Language": "en"}))


def test_the_choice_goes_only_back_to_a_page_of_this_site(client):
    response = _choose(client, "ru", next_url="https://elsewhere.example/", token_from="/login")
    assert response.status_code == 302
    assert "elsewhere" not in response.headers["Location"]


@pytest.mark.parametrize("code", ["de", "", "ru-RU", "RU", "x" * 300])
def test_an_unknown_language_is_refused(client, code):
    response = _choose(client, code, next_url="/login", token_from="/login")
    assert response.status_code == 400
    assert "wn_lang" not in response.headers.get("Set-Cookie", "")


def test_an_unknown_language_is_refused_for_a_signed_in_person_too(app, client):
    ada, _ = register_user(app)
    login(client)
    response = _choose(client, "de", next_url="/settings/", token_from="/settings/")
    assert response.status_code == 400
    assert _language_of(app, ada) == "en"


def test_a_choice_without_the_csrf_token_is_refused(client):
    response = client.post("/language", data={"language": "ru", "next": "/login"})
    assert response.status_code == 400
    assert "wn_lang" not in response.headers.get("Set-Cookie", "")


# --- signed in: the account's language -------------------------------------------------------


def test_the_choice_in_settings_is_stored_and_changes_the_pages(app, client):
    ada, _ = register_user(app)
    login(client)
    settings = _page(client.get("/settings/"))
    assert HTML_EN in settings
    assert 'action="/language"' in settings and "emails" in settings.lower()

    response = _choose(client, "ru", next_url="/settings/", token_from="/settings/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/settings/")
    assert _language_of(app, ada) == "ru"
    page = _page(client.get("/settings/", headers={"Accept-Language": "en"}))
    assert HTML_RU in page
    assert "Настройки" in page and "Письма вам тоже приходят на нём." in page
    assert re.search(r'<option value="ru" lang="ru" selected>Русский</option>', page)
    assert HTML_RU in _page(client.get("/"))

    _choose(client, "en", next_url="/settings/", token_from="/settings/")
    assert _language_of(app, ada) == "en"
    assert HTML_EN in _page(client.get("/settings/", headers=RU))


def test_the_account_language_wins_over_the_browser_and_an_old_cookie(app, client):
    ada, _ = register_user(app)
    with app.app_context():
        db.session.get(User, ada).language = "ru"
        db.session.commit()
    client.set_cookie("wn_lang", "en")
    login(client)
    assert HTML_RU in _page(client.get("/", headers={"Accept-Language": "en"}))


@pytest.mark.parametrize("path", ["/support", "/nowhere"])
def test_pages_that_never_load_the_account_still_speak_its_language(app, client, path):
    """Help and error pages read no account row, yet a signed-in person reads them in their
    language, whatever the browser says (the offline page goes by its address: see below)."""
    ada, _ = register_user(app)
    with app.app_context():
        db.session.get(User, ada).language = "ru"
        db.session.commit()
    login(client)
    assert HTML_RU in _page(client.get(path, headers={"Accept-Language": "en"}))
    chosen = _choose(client, "en", next_url="/", token_from="/settings/")
    assert chosen.status_code == 302
    assert HTML_EN in _page(client.get(path, headers=RU))


def test_a_partner_with_another_language_does_not_change_ones_own_pages(app):
    ada, _ = register_user(app, "ada@example.com", "Ada")
    bo, _ = register_user(app, "bo@example.com", "Бо")
    pair_users(app, ada, bo)
    with app.app_context():
        db.session.get(User, bo).language = "ru"
        db.session.commit()
    ada_client, bo_client = app.test_client(), app.test_client()
    login(ada_client, "ada@example.com")
    login(bo_client, "bo@example.com")
    for path in ("/", "/settings/"):
        ada_page = _page(ada_client.get(path, headers=RU))  # a Russian browser, an English account
        bo_page = _page(bo_client.get(path, headers={"Accept-Language": "en"}))
        assert HTML_EN in ada_page and HTML_RU in bo_page, path
    assert "You are paired with Бо." in _page(ada_client.get("/"))
    assert "Ваша пара: вы и Ada." in _page(bo_client.get("/"))


def test_flash_messages_dates_and_device_names_follow_the_language(app, client):
    ada, _ = register_user(app)
    with app.app_context():
        db.session.get(User, ada).language = "ru"
        db.session.commit()
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (Linux; Android 14) Firefox/120.0"
    login(client)
    page = _page(client.get("/settings/"))
    assert "Firefox на Android" in page
    assert "это устройство" in page
    response = post_form(client, "/logout", token_from="/settings/", follow_redirects=True)
    # The sign-in page after signing out stays in the account's language, on this browser.
    assert "Вы вышли из аккаунта." in _page(response) and HTML_RU in _page(response)
    assert HTML_RU in _page(client.get("/register"))


def test_the_scripts_words_come_in_the_pages_language(client):
    page = _page(client.get("/login", headers=RU))
    content = re.search(r"<meta name=\"wn-texts\" content='([^']*)'>", page).group(1)
    texts = json.loads(content.replace("&#34;", '"').replace("&amp;", "&"))
    assert texts["hide"] == "Скрыть" and texts["copied"] == "Скопировано."
    english = _page(client.get("/login"))
    assert '"hide": "Hide"' in english


def test_the_manifest_is_named_in_the_persons_language(client):
    assert client.get("/manifest.webmanifest").get_json(force=True)["name"] == "Notes"
    russian = client.get("/manifest.webmanifest?lang=ru").get_json(force=True)
    assert russian["name"] == russian["short_name"] == "Записки"
    assert russian["lang"] == "ru"
    # Fetched without cookies: the page's link names the language, else the browser's is used.
    assert "lang=ru" in _page(client.get("/login", headers=RU))
    by_header = client.get("/manifest.webmanifest", headers=RU).get_json(force=True)
    assert by_header["name"] == "Записки"


# --- error pages -----------------------------------------------------------------------------


def _statements(app):
    """Count the SQL statements run while the block runs (as a list to read afterwards)."""
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    return seen, lambda: event.remove(engine, "before_cursor_execute", count)


def test_a_not_found_page_is_russian_for_a_russian_browser_and_reads_no_database(app, client):
    seen, stop = _statements(app)
    try:
        response = client.get("/nowhere", headers=RU)
    finally:
        stop()
    page = _page(response)
    assert response.status_code == 404
    assert HTML_RU in page and "Не найдено" in page and "По этому адресу ничего нет." in page
    assert seen == []
    assert "Not found" in _page(client.get("/nowhere"))


def test_an_unexpected_error_page_is_russian_for_a_russian_browser(app, client):
    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("boom")

    response = client.get("/boom-for-test", headers=RU)
    assert response.status_code == 500
    assert HTML_RU in _page(response) and "Что-то пошло не так" in _page(response)
    assert "Something went wrong" in _page(client.get("/boom-for-test"))


def test_error_pages_are_russian_while_the_database_is_down(outage_app):  # noqa: F811
    app, outage = outage_app
    register_user(app)
    client = app.test_client()
    assert login(client).status_code == 302
    _choose(client, "ru", next_url="/", token_from="/settings/")  # the account and the cookie
    visitor = app.test_client()
    outage.cut()
    try:
        page = client.get("/settings/")
        assert page.status_code == 503
        assert HTML_RU in _page(page) and "Записки сейчас недоступны." in _page(page)
        missing = visitor.get("/nowhere", headers=RU)
        assert missing.status_code == 404 and "Не найдено" in _page(missing)
        welcome = visitor.get("/", headers=RU)  # a visitor's start page needs no database
        assert welcome.status_code == 200 and "Записки для двоих" in _page(welcome)
    finally:
        outage.restore()


def test_the_offline_page_kept_by_a_russian_page_is_russian(client):
    worker = client.get("/sw.js?lang=ru").get_data(as_text=True)
    assert 'const OFFLINE = "/offline?lang=ru";' in worker
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", worker).group(1))
    assert "/offline?lang=ru" in shell and "/offline" not in shell
    page = _page(client.get("/offline?lang=ru"))  # fetched without cookies
    assert HTML_RU in page and "Сейчас нет связи" in page
    assert 'const OFFLINE = "/offline";' in _page(client.get("/sw.js"))
    assert "No connection" in _page(client.get("/offline"))
    # An unknown language falls back to the browser's, and then English.
    assert 'const OFFLINE = "/offline";' in _page(client.get("/sw.js?lang=xx"))


def test_wtforms_own_messages_come_in_the_page_language_read_from_disk_once(app, monkeypatch):
    """WTForms' built-in messages ("Field cannot be longer than ...") are translated from its
    own catalog, read once per process and language, not on every request with a form."""
    from babel import support
    from wtforms.i18n import messages_path

    from wishnotes.accounts import NAME_MAX

    loads = []
    real_load = support.Translations.load.__func__

    def counting_load(cls, dirname=None, locales=None, domain=None):
        if domain == "wtforms":
            loads.append(str(locales))
        return real_load(cls, dirname, locales, domain)

    monkeypatch.setattr(support.Translations, "load", classmethod(counting_load))
    catalog = real_load(support.Translations, messages_path(), ["ru"], "wtforms")
    too_long = catalog.ungettext(
        "Field cannot be longer than %(max)d character.",
        "Field cannot be longer than %(max)d characters.",
        NAME_MAX,
    ) % {"max": NAME_MAX}
    assert too_long.startswith("Поле") or "символ" in too_long  # a Russian sentence
    client = app.test_client()
    for _ in range(3):
        page = post_form(
            client,
            "/register",
            {"email": "ada@example.com", "display_name": "x" * (NAME_MAX + 1)},
            headers={"Accept-Language": "ru"},
        )
        assert page.status_code == 422
        assert too_long in _page(page)
        assert client.get("/login", headers={"Accept-Language": "en"}).status_code == 200
    assert len(loads) <= 2, loads  # once for Russian, at most once for English
