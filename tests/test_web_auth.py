"""Registration, recovery kit, login, unlock and logout through the test client."""

import re

import pytest

from wishnotes.extensions import db
from wishnotes.models import KeySession, User

from .conftest import PASSWORD, login, post_form, register_user


def _register_via_form(client, email="ada@example.com", password=PASSWORD, **kw):
    return post_form(
        client, "/register", {"email": email, "display_name": "Ada", "password": password}, **kw
    )


def _kit(page: str) -> tuple[list[str], int]:
    groups = re.findall(r"<code>([A-Z2-7]{4})</code>", page)
    ask = int(re.search(r"type group (\d)", page).group(1)) - 1
    return groups, ask


def test_registration_shows_the_recovery_kit_then_requires_confirmation(client, app):
    response = _register_via_form(client)
    assert response.status_code == 200
    groups, ask = _kit(response.get_data(as_text=True))
    assert len(groups) == 8
    # Until one group is typed back, every page leads to the kit.
    assert client.get("/").headers["Location"].endswith("/recovery-kit/")
    wrong = post_form(
        client, "/recovery-kit/confirm", {"typed": "AAAA"}, token_from="/recovery-kit/"
    )
    assert wrong.status_code == 422
    page = wrong.get_data(as_text=True)
    assert "does not match" in page and f"type group {ask + 1}" in page
    assert not any(group in page for group in groups)  # the kit is not shown a second time
    right = post_form(
        client,
        "/recovery-kit/confirm",
        {"typed": groups[ask].lower()},
        token_from="/recovery-kit/",
    )
    assert right.status_code == 302
    assert client.get("/").status_code == 200
    with app.app_context():
        assert db.session.query(User).one().recovery_confirmed_at is not None


def test_the_kit_page_and_its_form_carry_no_part_of_the_key_but_the_asked_group(client, app):
    page = _register_via_form(client).get_data(as_text=True)
    groups, ask = _kit(page)
    form = page[page.index("<form") :]
    assert not any(group in form for group in groups)
    assert "-".join(groups) not in page and 'name="kit"' not in page and 'name="index"' not in page
    # The check lives in the key session, sealed under the session key only the cookie holds.
    with app.app_context():
        sealed = db.session.query(KeySession).one().kit_check
    assert sealed is not None
    assert not any(group.encode() in sealed for group in groups)
    # Whatever a form posts besides the typed group is ignored.
    forged = post_form(
        client,
        "/recovery-kit/confirm",
        {"typed": "AAAA", "index": 0, "kit": "AAAA-" * 7 + "AAAA"},
        token_from="/recovery-kit/",
    )
    assert forged.status_code == 422
    look_alikes = groups[ask].replace("O", "0").replace("I", "1").replace("B", "8").lower()
    confirmed = post_form(
        client,
        "/recovery-kit/confirm",
        {"typed": f" {look_alikes[:2]} {look_alikes[2:]} "},
        token_from="/recovery-kit/",
    )
    assert confirmed.status_code == 302
    with app.app_context():
        assert db.session.query(KeySession).one().kit_check is None


def test_confirming_without_the_key_session_asks_for_a_new_kit(client, app):
    page = _register_via_form(client).get_data(as_text=True)
    groups, ask = _kit(page)
    client.delete_cookie("wn_keys", domain="wishnotes.test")
    lost = post_form(
        client, "/recovery-kit/confirm", {"typed": groups[ask]}, token_from="/recovery-kit/"
    )
    assert lost.status_code == 302 and lost.headers["Location"].endswith("/recovery-kit/")
    with app.app_context():
        assert db.session.query(User).one().recovery_confirmed_at is None


def test_an_older_kit_cannot_be_confirmed_after_a_new_one_was_made(client, app):
    first = _register_via_form(client).get_data(as_text=True)
    old_groups, ask = _kit(first)
    other = app.test_client()  # the same person, signed in on a second browser
    login(other)
    newer = post_form(other, "/recovery-kit/new", token_from="/recovery-kit/")
    assert newer.status_code == 200 and _kit(newer.get_data(as_text=True))[0] != old_groups
    replay = post_form(
        client, "/recovery-kit/confirm", {"typed": old_groups[ask]}, token_from="/recovery-kit/"
    )
    assert replay.status_code == 422
    assert "no longer valid" in replay.get_data(as_text=True)


def test_registration_form_rejects_bad_input_with_422_and_keeps_no_account(client, app):
    for data in (
        {"email": "", "display_name": "Ada", "password": PASSWORD},
        {"email": "not-an-email", "display_name": "Ada", "password": PASSWORD},
        {"email": "ada@example.com", "display_name": "Ada", "password": "short"},
        {"email": "ada@example.com", "display_name": "", "password": PASSWORD},
    ):
        response = post_form(client, "/register", data)
        assert response.status_code == 422, data
        assert 'class="error"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_duplicate_email_gets_a_clear_message(client, app):
    register_user(app)
    response = _register_via_form(client, email="ADA@EXAMPLE.COM")
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_login_sets_split_key_cookie_and_session(client, app):
    register_user(app)
    response = login(client)
    assert response.status_code == 302
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    assert "HttpOnly" in cookies["wn_keys"] and "SameSite=Lax" in cookies["wn_keys"]
    assert "HttpOnly" in cookies["wn_session"]
    with app.app_context():
        assert db.session.query(KeySession).count() == 1
    assert client.get("/").status_code == 200


def test_unknown_email_and_wrong_password_get_the_same_message(client, app):
    register_user(app)
    unknown = login(client, email="nobody@example.com")
    wrong = login(client, password="not the password")
    assert unknown.status_code == wrong.status_code == 422
    message = "That email and password do not match an account."
    assert message in unknown.get_data(as_text=True)
    assert message in wrong.get_data(as_text=True)


def test_logout_deletes_the_key_session(client, app):
    register_user(app)
    login(client)
    response = post_form(client, "/logout", token_from="/settings/")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.query(KeySession).count() == 0
    assert client.get("/settings/").status_code == 302


def test_logout_needs_post_and_csrf(client, app):
    register_user(app)
    login(client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/settings/").status_code == 200


def test_login_form_without_or_with_a_wrong_csrf_token_is_rejected(client, app):
    register_user(app)
    data = {"email": "ada@example.com", "password": PASSWORD}
    assert client.post("/login", data=data).status_code == 400
    bad = client.post("/login", data={**data, "csrf_token": "forged"})
    assert bad.status_code == 400
    assert "sent twice" in bad.get_data(as_text=True)


def test_remembered_login_without_key_session_asks_to_unlock(client, app):
    register_user(app)
    login(client, remember="y")
    with app.app_context():
        db.session.query(KeySession).delete()
        db.session.commit()
    # The login survives, the keys do not: unlocking needs the password again.
    assert client.get("/settings/").status_code == 200
    response = client.get("/unlock")
    assert response.status_code == 200
    unlocked = post_form(client, "/unlock?next=/settings/", {"password": PASSWORD})
    assert unlocked.headers["Location"] == "/settings/"
    with app.app_context():
        assert db.session.query(KeySession).count() == 1


def test_login_redirect_ignores_foreign_next(client, app):
    register_user(app)
    response = post_form(
        client,
        "/login?next=//evil.example/",
        {"email": "ada@example.com", "password": PASSWORD},
        token_from="/login",
    )
    assert response.headers["Location"] == "/"


def test_login_is_rate_limited_per_account_and_per_address(tmp_path, postgres_engine):
    from .conftest import make_app, reset_database

    app = make_app(
        tmp_path,
        postgres_engine,
        RATELIMIT_ENABLED=True,
        LOGIN_LIMIT_PER_ACCOUNT="3 per minute",
        LOGIN_LIMIT_PER_ADDRESS="5 per minute",
    )
    reset_database(app)
    register_user(app)
    client = app.test_client()
    codes = [login(client, password="wrong password").status_code for _ in range(4)]
    assert codes == [422, 422, 422, 429]
    # Another account from the same address still has two tries left, then the address limit.
    other = [login(client, email=f"x{i}@example.com").status_code for i in range(3)]
    assert other == [422, 422, 429]
    page = login(client).get_data(as_text=True)
    assert "Please wait a moment" in page
    # A different address is not affected by the address limit, only by the account one.
    fresh = post_form(
        client,
        "/login",
        {"email": "y@example.com", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert fresh.status_code == 422


@pytest.mark.parametrize("path", ["/settings/", "/pair/", "/recovery-kit/"])
def test_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
