"""The compose page shows today's prompt; a starter link fills the body and records the prompt."""

import html
import re

from wishnotes import program, prompts
from wishnotes.extensions import db
from wishnotes.models import Note, User

from .conftest import login, now, pair_users, post_form, register_user, start_agreed_week


def _paired_with_week(app):
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    with app.app_context():
        ada = db.session.get(User, ada_id)
        start_agreed_week(
            user=ada, theme_key="wishes", start_date=now().date(), timezone="UTC", now=now()
        )
    client = app.test_client()
    login(client)
    return client


def test_compose_shows_todays_prompt_and_starter_links(app):
    client = _paired_with_week(app)
    page = html.unescape(client.get("/notes/new").get_data(as_text=True))
    first = program.prompt_library().first_week().prompt_for_day(1)
    assert first.title in page
    assert "/notes/new?prompt=wishes-1&starter=0" in page


def test_a_starter_link_fills_the_body_and_the_sent_note_records_its_prompt(app):
    client = _paired_with_week(app)
    first = program.prompt_library().first_week().prompt_for_day(1)
    page = html.unescape(client.get("/notes/new?prompt=wishes-1&starter=0").get_data(as_text=True))
    body = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1)
    assert body.strip() == first.starters[0].rstrip("…").strip()
    assert 'name="prompt_key" type="hidden" value="wishes-1"' in page
    sent = post_form(
        client,
        "/notes/new",
        {"body": body + "to walk by the river.", "prompt_key": "wishes-1"},
        token_from="/notes/new",
    )
    assert sent.status_code == 302
    with app.app_context():
        assert db.session.query(Note).one().prompt_key == "wishes-1"


def test_unknown_prompt_or_starter_in_the_link_is_ignored(app):
    client = _paired_with_week(app)
    for query in (
        "prompt=nope&starter=0",
        "prompt=wishes-1&starter=99",
        "prompt=wishes-1&starter=x",
    ):
        page = client.get(f"/notes/new?{query}")
        assert page.status_code == 200
        body = re.search(r"<textarea[^>]*>(.*?)</textarea>", page.get_data(as_text=True), re.S)
        assert body.group(1).strip() == ""


def test_prompts_come_in_the_readers_language_while_notes_keep_only_the_key(app):
    client = _paired_with_week(app)  # Ada, in English
    with app.app_context():
        bo = db.session.scalars(db.select(User).filter_by(email="bo@example.com")).one()
        bo.language = "ru"
        db.session.commit()
    en, ru = prompts.shipped("en").prompt("wishes-1"), prompts.shipped("ru").prompt("wishes-1")
    sent = post_form(
        client,
        "/notes/new",
        {"body": en.starters[0].rstrip("…") + " walk by the river.", "prompt_key": "wishes-1"},
        token_from="/notes/new?prompt=wishes-1&starter=0",
    )
    assert sent.status_code == 302
    with app.app_context():
        note = db.session.query(Note).one()
    assert note.prompt_key == "wishes-1"

    reader = app.test_client()
    login(reader, email="bo@example.com")
    opened = html.unescape(reader.get(f"/notes/{note.id}").get_data(as_text=True))
    assert ru.title in opened and en.title not in opened
    compose = html.unescape(reader.get("/notes/new").get_data(as_text=True))
    assert ru.title in compose and ru.guidance in compose and ru.starters[1] in compose
    filled = html.unescape(
        reader.get("/notes/new?prompt=wishes-1&starter=0").get_data(as_text=True)
    )
    body = re.search(r"<textarea[^>]*>(.*?)</textarea>", filled, re.S).group(1)
    assert body.strip() == ru.starters[0].rstrip("…").strip()

    writer = html.unescape(client.get(f"/notes/{note.id}").get_data(as_text=True))
    assert en.title in writer and ru.title not in writer
