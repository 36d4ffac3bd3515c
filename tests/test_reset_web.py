"""Forgot password through the pages, with the email delivered by a real SMTP server."""

import re

import pytest

from wishnotes import crypto, mail, outbox
from wishnotes.clock import now as clock_now
from wishnotes.extensions import db
from wishnotes.models import KeySession, OutboxEmail, RetiredKeys

from .conftest import PASSWORD, login, make_app, post_form, register_user, reset_database
from .smtp import smtp_server  # noqa: F401 - fixture

NEW_PASSWORD = "a brand new evening walk"


@pytest.fixture
def reset_app(tmp_path, postgres_engine, smtp_server):  # noqa: F811
    app = make_app(
        tmp_path,
        postgres_engine,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp_server.port,
        SMTP_TIMEOUT=5.0,
        BASE_URL="https://notes.example.org",
    )
    reset_database(app)
    return app


def _deliver(app) -> None:
    with app.app_context():
        outbox.deliver_due(now=clock_now(), transport=mail.transport())


def _ask_for_link(app, server, email="ada@example.com") -> str:
    client = app.test_client()
    page = post_form(client, "/forgot", {"email": email})
    assert page.status_code == 200 and "Check your inbox" in page.get_data(as_text=True)
    _deliver(app)
    message = server.messages[-1]
    text = message.get_body(("plain",)).get_content()
    link = re.search(r"https://notes\.example\.org(/reset/\S+)", text).group(1)
    return link


def test_unknown_address_gets_the_same_page_and_no_email(reset_app, smtp_server):  # noqa: F811
    register_user(reset_app)
    page = post_form(reset_app.test_client(), "/forgot", {"email": "nobody@example.com"})
    assert page.status_code == 200 and "Check your inbox" in page.get_data(as_text=True)
    _deliver(reset_app)
    assert smtp_server.messages == []


def test_recovery_key_and_emailed_link_set_a_new_password(reset_app, smtp_server):  # noqa: F811
    _, recovery_key = register_user(reset_app)
    other_device = reset_app.test_client()
    login(other_device)
    path = _ask_for_link(reset_app, smtp_server)
    message = smtp_server.messages[-1]
    assert message["To"] == "ada@example.com"
    assert message.get_body(("html",)) is not None

    client = reset_app.test_client()
    wrong = post_form(client, path, {"recovery_key": "A" * 32, "password": NEW_PASSWORD})
    assert wrong.status_code == 422
    assert "does not match" in wrong.get_data(as_text=True)
    done = post_form(
        client,
        path,
        {"recovery_key": crypto.format_recovery_key(recovery_key), "password": NEW_PASSWORD},
    )
    assert done.status_code == 200
    assert len(re.findall(r"<code>[A-Z2-7]{4}</code>", done.get_data(as_text=True))) == 8

    # The other device is signed out; the link is used up; the new password works.
    assert other_device.get("/settings/").status_code == 302
    assert reset_app.test_client().get(path).status_code == 404
    assert login(reset_app.test_client(), password=NEW_PASSWORD).status_code == 302
    assert login(reset_app.test_client(), password=PASSWORD).status_code == 422
    with reset_app.app_context():
        row = db.session.query(OutboxEmail).filter_by(kind="password_reset").one()
        assert row.status == "sent"
        assert path.split("/")[-1] not in (row.text_body or "") + (row.html_body or "")


def test_fresh_start_warns_and_keeps_the_old_keys(reset_app, smtp_server):  # noqa: F811
    register_user(reset_app)
    path = _ask_for_link(reset_app, smtp_server)
    client = reset_app.test_client()
    warning = client.get(path + "/fresh").get_data(as_text=True)
    assert "stay locked" in warning and "Nothing is deleted" in warning
    refused = post_form(client, path + "/fresh", {"password": NEW_PASSWORD})
    assert refused.status_code == 422
    done = post_form(client, path + "/fresh", {"password": NEW_PASSWORD, "understood": "y"})
    assert done.status_code == 200
    with reset_app.app_context():
        assert db.session.query(RetiredKeys).count() == 1
        assert db.session.query(KeySession).count() == 1  # only this browser


def test_expired_link_is_refused_clearly(reset_app, smtp_server):  # noqa: F811
    from datetime import timedelta

    register_user(reset_app)
    path = _ask_for_link(reset_app, smtp_server)
    reset_app.config["NOW"] = clock_now() + timedelta(hours=2)
    page = reset_app.test_client().get(path)
    assert page.status_code == 404
    assert "expired" in page.get_data(as_text=True)
