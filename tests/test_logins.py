"""Logins are rows: sign-out, a password change and "sign out everywhere else" end copies."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from flask_login.utils import decode_cookie
from sqlalchemy import select

from wishnotes import crypto, keysessions, logins, recovery
from wishnotes.extensions import db
from wishnotes.models import KeySession, Login, Note, Pair, User

from .conftest import PASSWORD, csrf_token, login, pair_users, post_form, register_user

HOST = "wishnotes.test"
NEW_PASSWORD = "seven swans over the bay"
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def cookie(client, name: str) -> str | None:
    found = client.get_cookie(name, domain=HOST)
    return found.value if found is not None else None


def thief_with(app, source, *names: str):
    """A new browser holding copies of `source`'s cookies, as someone who copied them would."""
    thief = app.test_client()
    for name in names:
        value = cookie(source, name)
        assert value, f"{name} was not set"
        thief.set_cookie(name, value, domain=HOST)
    return thief


def signed_in(client) -> bool:
    response = client.get("/settings/")
    return response.status_code == 200


def signed_in_browser(app, email="ada@example.com", *, remember=False, agent=FIREFOX_ANDROID):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    extra = {"remember": "y"} if remember else {}
    assert login(client, email=email, **extra).status_code == 302
    return client


@pytest.fixture
def ada(app):
    register_user(app)
    return app


# --- copied cookies ----------------------------------------------------------------------


def test_a_copied_session_cookie_stops_working_after_sign_out(ada):
    browser = signed_in_browser(ada)
    copy = thief_with(ada, browser, "wn_session")
    assert signed_in(copy)  # the copy works while the login lives
    assert post_form(browser, "/logout", token_from="/settings/").status_code == 302
    assert not signed_in(copy)
    for path in ("/notes/", "/pair/", "/settings/password"):
        page = copy.get(path)
        assert page.status_code == 302 and "/login" in page.headers["Location"], path
    assert "ada@example.com" not in copy.get("/").get_data(as_text=True)
    with ada.app_context():
        assert db.session.query(Login).count() == 0


def test_a_copied_remember_me_cookie_stops_working_after_sign_out(ada):
    browser = signed_in_browser(ada, remember=True)
    copy = thief_with(ada, browser, "wn_remember")  # no session cookie: only remember-me
    post_form(browser, "/logout", token_from="/settings/")
    assert not signed_in(copy)
    assert cookie(copy, "wn_session") is None or not signed_in(copy)


def test_copied_cookies_stop_working_after_a_password_change(ada):
    other = signed_in_browser(ada, remember=True, agent=CHROME_WINDOWS)
    copies = [thief_with(ada, other, "wn_session"), thief_with(ada, other, "wn_remember")]
    browser = signed_in_browser(ada)
    response = post_form(
        browser,
        "/settings/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert signed_in(browser)  # the browser that changed it stays signed in and unlocked
    assert "Unlock your notes" not in browser.get("/notes/new").get_data(as_text=True)
    assert not signed_in(other)
    for copy in copies:
        assert not signed_in(copy)
    with ada.app_context():
        assert db.session.query(Login).count() == 1
        assert db.session.query(KeySession).count() == 1


def test_copied_cookies_stop_working_after_sign_out_everywhere_else(ada):
    phone = signed_in_browser(ada, remember=True, agent=SAFARI_IPHONE)
    copies = [thief_with(ada, phone, "wn_session"), thief_with(ada, phone, "wn_remember")]
    laptop = signed_in_browser(ada, agent=CHROME_WINDOWS)
    page = laptop.get("/settings/").get_data(as_text=True)
    assert "Where you\u2019re signed in" in page
    assert "Safari on iPhone" in page and "Chrome on Windows" in page
    response = post_form(laptop, "/settings/logins/end-others", token_from="/settings/")
    assert response.status_code == 302
    assert signed_in(laptop)
    assert not signed_in(phone)
    for copy in copies:
        assert not signed_in(copy)
    page = laptop.get("/settings/").get_data(as_text=True)
    assert "Safari on iPhone" not in page and "Sign out everywhere else" not in page


def test_a_copied_session_cannot_destroy_anything_without_the_keys(app):
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    ada = signed_in_browser(app)
    assert post_form(ada, "/notes/new", {"body": "I would like a slow morning."}).status_code == 302
    with app.app_context():
        note_id = db.session.scalar(select(Note.id))
    copy = thief_with(app, ada, "wn_session")  # the login, without the key cookie
    delete_note = post_form(copy, f"/notes/{note_id}/delete")
    assert delete_note.status_code == 302 and "/unlock" in delete_note.headers["Location"]
    unpair = post_form(copy, "/pair/unpair", {"confirm": "y", "delete_my_notes": "y"})
    assert unpair.status_code == 302 and "/unlock" in unpair.headers["Location"]
    delete_account = post_form(copy, "/settings/delete", {"password": "a guess", "confirm": "y"})
    assert delete_account.status_code == 422
    with app.app_context():
        assert db.session.get(Note, note_id) is not None
        assert db.session.scalars(select(Pair)).one().ended_at is None
        assert db.session.get(User, ada_id).pair_id is not None
    # With the keys unlocked, the same delete goes through.
    assert post_form(ada, f"/notes/{note_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Note, note_id) is None


def test_deleting_past_notes_needs_unlocked_keys(app):
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    ada = signed_in_browser(app)
    post_form(ada, "/notes/new", {"body": "I would like a slow morning."})
    post_form(ada, "/pair/unpair", {"confirm": "y"})
    copy = thief_with(app, ada, "wn_session")
    response = post_form(copy, "/notes/past/delete", {"confirm": "y"}, token_from="/notes/past")
    assert (
        response.status_code == 302 and "/unlock?next=/notes/past" in response.headers["Location"]
    )
    with app.app_context():
        assert db.session.query(Note).count() == 1


# --- the login rows ----------------------------------------------------------------------


def test_cookies_name_a_login_only_the_hashes_of_their_tokens_are_stored(ada):
    browser = signed_in_browser(ada, remember=True)
    with ada.app_context():
        remember = decode_cookie(cookie(browser, "wn_remember"))
        token, _, secret = remember.partition(".")
        row = db.session.scalars(select(Login)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).digest()
        assert row.remember_hash == hashlib.sha256(secret.encode()).digest()
        assert row.device == "Firefox on Android" and row.remember
        stored = repr([getattr(row, c.key) for c in Login.__table__.columns])
    assert token not in stored and secret not in stored


def test_the_remember_me_secret_rotates_on_use_and_an_old_one_ends_the_login(ada):
    browser = signed_in_browser(ada, remember=True)
    first = cookie(browser, "wn_remember")
    browser.delete_cookie("wn_session", domain=HOST)  # the browser was closed
    assert signed_in(browser)
    second = cookie(browser, "wn_remember")
    assert second != first
    # Tabs restored together all send the old value: it still works for a moment.
    tab = thief_with(ada, browser, "wn_remember")
    tab.set_cookie("wn_remember", first, domain=HOST)
    assert signed_in(tab)
    # Later, the old value is a copy: it signs nobody in and ends the login it named.
    with ada.app_context():
        row = db.session.scalars(select(Login)).one()
        row.rotated_at = row.rotated_at - logins.ROTATION_GRACE - timedelta(seconds=1)
        db.session.commit()
    stale = ada.test_client()
    stale.set_cookie("wn_remember", first, domain=HOST)
    assert not signed_in(stale)
    assert not signed_in(browser)
    with ada.app_context():
        assert db.session.query(Login).count() == 0


def test_a_key_cookie_opens_nothing_under_another_login(ada):
    first = signed_in_browser(ada)
    second = signed_in_browser(ada)
    second.set_cookie("wn_keys", cookie(first, "wn_keys"), domain=HOST)
    response = second.get("/settings/safety-number")
    assert response.status_code == 302 and "/unlock" in response.headers["Location"]


def test_ending_a_login_ends_its_key_sessions(ada):
    browser = signed_in_browser(ada)
    other = signed_in_browser(ada)
    with ada.app_context():
        assert db.session.query(KeySession).count() == 2
        ids = [row.id for row in db.session.scalars(select(Login).order_by(Login.id))]
    page = other.get("/settings/").get_data(as_text=True)
    assert f"/settings/logins/{ids[0]}/end" in page
    assert f"/settings/logins/{ids[1]}/end" not in page  # this device signs out with "Sign out"
    response = post_form(other, f"/settings/logins/{ids[0]}/end", token_from="/settings/")
    assert response.status_code == 302
    assert not signed_in(browser)
    with ada.app_context():
        assert db.session.query(KeySession).count() == 1
        assert db.session.scalar(select(KeySession.login_id)) == ids[1]


def test_a_person_can_end_only_their_own_logins(app):
    register_user(app, "ada@example.com", "Ada")
    register_user(app, "bo@example.com", "Bo")
    ada = signed_in_browser(app)
    bo = signed_in_browser(app, "bo@example.com")
    with app.app_context():
        bo_login = db.session.scalar(
            select(Login.id)
            .join(User, User.id == Login.user_id)
            .where(User.email == "bo@example.com")
        )
    token = csrf_token(ada, "/settings/")
    assert (
        ada.post(f"/settings/logins/{bo_login}/end", data={"csrf_token": token}).status_code == 404
    )
    assert ada.post("/settings/logins/999999/end", data={"csrf_token": token}).status_code == 404
    assert ada.post(f"/settings/logins/{bo_login}/end").status_code == 400  # no CSRF token
    assert ada.post("/settings/logins/end-others").status_code == 400
    assert signed_in(bo)


@pytest.mark.parametrize("way", ["recovery key", "fresh start"])
def test_a_password_reset_ends_every_login(app, way):
    _, recovery_key = register_user(app)
    browser = signed_in_browser(app, remember=True)
    copies = [thief_with(app, browser, "wn_session"), thief_with(app, browser, "wn_remember")]
    kdf = app.extensions["wishnotes.kdf"]
    with app.app_context():
        _, token = recovery.request_reset(email="ada@example.com", now=datetime.now(UTC))
        db.session.commit()
        if way == "recovery key":
            recovery.recover_with_key(
                token=token,
                recovery_key_text=crypto.format_recovery_key(recovery_key),
                new_password=NEW_PASSWORD,
                kdf=kdf,
                now=datetime.now(UTC),
            )
        else:
            recovery.reset_with_fresh_keys(
                token=token,
                new_password=NEW_PASSWORD,
                understood=True,
                kdf=kdf,
                now=datetime.now(UTC),
            )
        assert db.session.query(Login).count() == 0
        assert db.session.query(KeySession).count() == 0
    assert not signed_in(browser)
    for copy in copies:
        assert not signed_in(copy)


def test_account_deletion_ends_every_login(ada):
    other = signed_in_browser(ada, remember=True)
    browser = signed_in_browser(ada)
    post_form(browser, "/settings/delete", {"password": PASSWORD, "confirm": "y"})
    with ada.app_context():
        assert db.session.query(Login).count() == 0
    assert not signed_in(other)
    assert not signed_in(thief_with(ada, other, "wn_remember"))


def test_settings_show_when_each_login_was_last_seen(app):
    days = iter([datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 6, 9, tzinfo=UTC)])
    moment = {"now": next(days)}
    app.config["NOW"] = lambda: moment["now"]
    register_user(app)
    old = signed_in_browser(app, agent=SAFARI_IPHONE)
    moment["now"] = next(days)
    browser = signed_in_browser(app, agent=CHROME_WINDOWS)
    page = browser.get("/settings/").get_data(as_text=True)
    assert "Safari on iPhone" in page and "02 Mar 2026" in page
    assert "this device" in page
    old.get("/")  # seen again today: one write moves the day on
    page = browser.get("/settings/").get_data(as_text=True)
    assert "02 Mar 2026" not in page and "seen today" in page


# --- the service, with an explicit now ---------------------------------------------------

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
LIFETIMES = {"idle": timedelta(days=7), "remembered": timedelta(days=30)}


def test_a_login_ends_after_its_idle_time_and_each_seen_day_extends_it(app_ctx):
    user_id, _ = register_user(app_ctx)
    user = db.session.get(User, user_id)
    opened = logins.open_login(user=user, device="Firefox", remember=False, now=T0, **LIFETIMES)
    assert logins.resume(token=opened.token, now=T0 + timedelta(days=6), **LIFETIMES)
    # Seen on day 6: it now lasts until day 13.
    assert logins.resume(token=opened.token, now=T0 + timedelta(days=12), **LIFETIMES)
    assert logins.resume(token=opened.token, now=T0 + timedelta(days=20), **LIFETIMES) is None
    remembered = logins.open_login(user=user, device="Firefox", remember=True, now=T0, **LIFETIMES)
    assert logins.resume(token=remembered.token, now=T0 + timedelta(days=29), **LIFETIMES)
    assert logins.resume(token="", now=T0, **LIFETIMES) is None
    assert logins.resume(token="x" * 500, now=T0, **LIFETIMES) is None


@pytest.mark.parametrize(
    ("agent", "label"),
    [
        (FIREFOX_ANDROID, "Firefox on Android"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (CHROME_WINDOWS, "Chrome on Windows"),
        (CHROME_WINDOWS + " Edg/126.0.0.0", "Edge on Windows"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Version/17.5 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Linux",
        ),
        ("curl/8.5.0", "A browser"),
        ("", "A browser"),
    ],
)
def test_device_label_names_only_the_browser_and_system(agent, label):
    assert logins.device_label(agent) == label


def test_key_sessions_of_a_login_are_opened_under_it(app_ctx):
    user_id, _ = register_user(app_ctx)
    user = db.session.get(User, user_id)
    opened = logins.open_login(user=user, device="Firefox", remember=False, now=T0, **LIFETIMES)
    value = keysessions.open_session(
        user=user, user_key=bytes(32), login_id=opened.login.id, now=T0
    )
    assert db.session.scalars(select(KeySession)).one().login_id == opened.login.id
    assert logins.end(user=user, login_id=opened.login.id)
    assert db.session.query(KeySession).count() == 0
    assert value  # the cookie value alone names nothing any more


def test_loading_the_login_and_its_user_is_one_query(ada):
    from sqlalchemy import event

    browser = signed_in_browser(ada)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement.lower())

    with ada.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert browser.get("/keys/idle").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    reads = [s for s in statements if "from logins" in s or "from users" in s]
    assert len(reads) == 1, statements
    assert "join users" in reads[0]
