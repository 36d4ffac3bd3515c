"""Email settings, and one-click unsubscribe (RFC 8058): no login, no CSRF, bound to its token."""

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from wishnotes import outbox, preferences, schedule
from wishnotes.extensions import db
from wishnotes.models import OutboxEmail, User

from .conftest import SECRET_KEY, login, pair_users, post_form, register_user

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def ada(app):
    user_id, _ = register_user(app, "ada@example.com", "Ada")
    return user_id


def token(user_id: int, kind: str, secret: str = SECRET_KEY) -> str:
    return preferences.unsubscribe_token(user_id=user_id, kind=kind, secret_key=secret)


def settings_of(app, user_id):
    with app.app_context():
        return preferences.settings_of(db.session.get(User, user_id))


def test_one_click_post_unsubscribes_that_kind_without_login_or_csrf(app, client, ada):
    response = client.post(f"/unsubscribe/{token(ada, 'weekly')}", data=ONE_CLICK)
    assert response.status_code == 200
    assert "no longer receive the weekly summary" in response.get_data(as_text=True)
    after = settings_of(app, ada)
    assert after.weekly_email is False
    assert after.note_notice is True  # only the kind the token names
    again = client.post(f"/unsubscribe/{token(ada, 'weekly')}", data=ONE_CLICK)
    assert again.status_code == 200  # replaying it is harmless


def test_one_click_also_accepts_multipart_form_data(app, client, ada):
    response = client.post(
        f"/unsubscribe/{token(ada, 'note_notice')}",
        data=ONE_CLICK,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert settings_of(app, ada).note_notice is False


def test_the_confirmation_page_changes_nothing_until_its_button_is_pressed(app, client, ada):
    page = client.get(f"/unsubscribe/{token(ada, 'daily')}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "the daily summary" in body and 'value="One-Click"' in body
    with app.app_context():
        db.session.get(User, ada).daily_email = True
        db.session.commit()
    client.get(f"/unsubscribe/{token(ada, 'daily')}")
    assert settings_of(app, ada).daily_email is True


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-token",
        "",
        "x" * 5000,
        "%00%ff",
        "WzEsIndlZWtseSJd.forged",
    ],
)
def test_malformed_or_forged_tokens_are_refused_and_change_nothing(app, client, ada, bad):
    for response in (
        client.get(f"/unsubscribe/{bad}"),
        client.post(f"/unsubscribe/{bad}", data=ONE_CLICK),
    ):
        assert 400 <= response.status_code < 500, bad
    assert settings_of(app, ada).weekly_email is True


def test_a_token_signed_with_another_key_or_for_another_kind_does_not_work(app, client, ada):
    foreign = token(ada, "weekly", secret="another-secret-key-" + "x" * 32)
    assert client.post(f"/unsubscribe/{foreign}", data=ONE_CLICK).status_code == 404
    assert settings_of(app, ada).weekly_email is True
    # A daily token turns off the daily email, never the weekly one.
    client.post(f"/unsubscribe/{token(ada, 'daily')}", data=ONE_CLICK)
    assert settings_of(app, ada).weekly_email is True
    with pytest.raises(ValueError):
        token(ada, "password_reset")


def test_a_token_names_its_own_user_only(app, client, ada):
    bo, _ = register_user(app, "bo@example.com", "Bo")
    client.post(f"/unsubscribe/{token(bo, 'weekly')}", data=ONE_CLICK)
    assert settings_of(app, bo).weekly_email is False
    assert settings_of(app, ada).weekly_email is True


def test_a_post_without_the_one_click_body_is_refused(app, client, ada):
    response = client.post(f"/unsubscribe/{token(ada, 'weekly')}", data={"x": "1"})
    assert response.status_code == 400
    assert settings_of(app, ada).weekly_email is True


def test_a_token_of_a_deleted_account_answers_calmly(app, client, ada):
    link = f"/unsubscribe/{token(ada, 'weekly')}"
    with app.app_context():
        db.session.delete(db.session.get(User, ada))
        db.session.commit()
    assert client.post(link, data=ONE_CLICK).status_code == 200


def test_the_link_in_a_real_weekly_email_unsubscribes(app, client, ada):
    bo, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada, bo)
    weekday, hour = settings_of(app, ada).weekly_weekday, settings_of(app, ada).weekly_hour
    with app.app_context():
        # Ada's own evening slot in the week of Monday 2 March 2026 (UTC).
        schedule.queue_due(now=datetime(2026, 3, 2 + weekday, hour, tzinfo=UTC))
        row = db.session.scalar(select(OutboxEmail).where(OutboxEmail.user_id == ada))
        html = outbox.contents(row).html
    url = re.search(r'href="([^"]*/unsubscribe/[^"]+)"', html).group(1)
    assert client.post(urlsplit(url).path, data=ONE_CLICK).status_code == 200
    assert settings_of(app, ada).weekly_email is False
    assert settings_of(app, bo).weekly_email is True


# --- the settings page -----------------------------------------------------------------------


def test_email_settings_are_saved_through_the_page(app, client, ada):
    login(client)
    page = client.get("/settings/emails").get_data(as_text=True)
    # One menu, every zone grouped by region: choosing is a single step.
    assert '<optgroup label="Europe">' in page and "Show its places" not in page
    assert "<option>Europe/Berlin" in page and "<option>America/New_York" in page
    response = post_form(
        client,
        "/settings/emails",
        {
            "timezone": "Europe/Berlin",
            "weekly_email": "y",
            "weekly_weekday": "4",
            "weekly_hour": "7",
            "daily_hour": "20",
            "note_notice": "y",
        },
    )
    assert response.status_code == 302
    saved = settings_of(app, ada)
    assert (saved.timezone, saved.weekly_weekday, saved.weekly_hour) == ("Europe/Berlin", 4, 7)
    assert (saved.daily_email, saved.daily_hour, saved.discreet_subjects) == (False, 20, False)
    page = client.get("/settings/emails").get_data(as_text=True)
    assert "<option selected>Europe/Berlin" in page
    assert "Fridays at 07:00, Berlin time" in page


@pytest.mark.parametrize(
    "changes",
    [
        {"timezone": "Mars/Base"},
        {"timezone": ""},
        {"timezone": "Europe/" + "B" * 3000},
        {"weekly_hour": "25"},
        {"weekly_hour": "seven"},
        {"weekly_weekday": "-1"},
        {"daily_hour": ""},
    ],
)
def test_bad_email_settings_are_refused_with_422_and_nothing_changes(app, client, ada, changes):
    login(client)
    before = settings_of(app, ada)
    data = {"timezone": "UTC", "weekly_weekday": "2", "weekly_hour": "7", "daily_hour": "7"}
    response = post_form(client, "/settings/emails", {**data, **changes})
    assert response.status_code == 422
    assert "Please choose" in response.get_data(as_text=True)
    assert settings_of(app, ada) == before


def test_the_settings_page_needs_a_login(client):
    response = client.get("/settings/emails")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
