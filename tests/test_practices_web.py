"""The practices through the pages: the table, a place of our own, agreements, the timer."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import unquote_plus

import pytest
from sqlalchemy import delete, select, update

from wishnotes import practice_texts
from wishnotes.extensions import db
from wishnotes.models import (
    Agreement,
    KeySession,
    Place,
    PlaceTurn,
    RitualDone,
    RitualItem,
    User,
)

from .conftest import csrf_token, login, pair_users, post_form, register_user


@pytest.fixture
def couple(app):
    """Ada and Bo, paired, each signed in with keys unlocked in their own browser."""
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    ada, bo = app.test_client(), app.test_client()
    login(ada)
    login(bo, email="bo@example.com")
    return ada, bo


def text(response) -> str:
    return response.get_data(as_text=True)


def one(app, model):
    with app.app_context():
        return db.session.scalars(select(model)).one()


def test_together_page_leads_to_the_three_practices_and_home_leads_there(couple):
    ada, _ = couple
    assert "/together/" in text(ada.get("/"))
    page = ada.get("/together/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    for url in ("/together/table/", "/together/place/", "/together/agreements/"):
        assert url in text(page)
        assert ada.get(url).status_code == 200


def test_an_i_miss_item_is_shared_welcomed_planned_done_twice_and_archived(app, couple):
    ada, bo = couple
    added = post_form(ada, "/together/table/", {"text": "I miss our Sunday pancakes"})
    assert added.status_code == 302
    item = one(app, RitualItem)
    assert "Ada added something to your table" in text(bo.get("/"))
    page = text(bo.get("/together/table/"))
    assert "I miss our Sunday pancakes" in page and "Ada added this" in page
    assert "Ada added something to your table" not in text(bo.get("/"))  # seen now
    # The author cannot answer their own item; the other partner can.
    own = post_form(ada, f"/together/table/{item.id}/welcome", token_from="/together/table/")
    assert own.status_code == 404
    welcomed = post_form(bo, f"/together/table/{item.id}/welcome", token_from="/together/table/")
    assert welcomed.status_code == 302
    assert "Let's bring it back" in text(ada.get("/together/table/"))
    today = date.today()
    planned = (today + timedelta(days=3)).isoformat()
    post_form(
        ada, f"/together/table/{item.id}/plan", {"day": planned}, token_from="/together/table/"
    )
    assert "Planned for" in text(ada.get("/together/table/"))
    for day in (today - timedelta(days=20), today):
        post_form(
            bo,
            f"/together/table/{item.id}/done",
            {"day": day.isoformat()},
            token_from="/together/table/",
        )
    page = text(ada.get("/together/table/"))
    assert page.count("<time datetime=") >= 2 and "Done " in page
    assert not re.search(r"\b\d+ (times|days in a row)\b|streak|score", page, re.I)
    with app.app_context():
        assert len(db.session.scalars(select(RitualDone)).all()) == 2
    post_form(ada, f"/together/table/{item.id}/archive", token_from="/together/table/")
    assert "Sunday pancakes" not in text(ada.get("/together/table/"))
    assert "Sunday pancakes" in text(bo.get("/together/table/archive"))
    post_form(
        bo, f"/together/table/{item.id}/archive", {"restore": "1"}, token_from="/together/table/"
    )
    assert "Sunday pancakes" in text(ada.get("/together/table/"))


def test_a_future_done_day_or_a_too_long_item_is_a_calm_4xx(app, couple):
    ada, _ = couple
    long = post_form(ada, "/together/table/", {"text": "I miss " + "x" * 400})
    assert long.status_code == 422 and "under 300 characters" in text(long)
    post_form(ada, "/together/table/", {"text": "I miss the walks"})
    item = one(app, RitualItem)
    future = (date.today() + timedelta(days=5)).isoformat()
    response = post_form(
        ada, f"/together/table/{item.id}/done", {"day": future}, token_from="/together/table/"
    )
    assert response.status_code == 422 and "today or earlier" in text(response)
    bad = post_form(
        ada, f"/together/table/{item.id}/plan", {"day": "not a day"}, token_from="/together/table/"
    )
    assert bad.status_code == 422


def test_a_place_is_written_in_turns_and_stays_readable_once_ended(app, couple):
    ada, bo = couple
    post_form(ada, "/together/place/start", {"name": "The cove"}, token_from="/together/place/")
    place = one(app, Place)
    page = text(ada.get("/together/place/"))
    assert "Your turn" in page and "The cove" in page
    assert len(re.findall(r'<ul class="starters"', page)) == 1
    assert len(re.findall(r"/together/place/\?starter=", page)) == 3
    assert "Ada's turn" in text(bo.get("/together/place/"))
    # Bo cannot write while it is Ada's turn, and his words come back to him.
    early = post_form(
        bo,
        f"/together/place/{place.id}/turn",
        {"text": "The sand is warm"},
        token_from="/together/table/",
    )
    assert early.status_code == 422 and "The sand is warm" in text(early)
    wave = "I see the sea, a wave breaks on the shore"
    first = post_form(
        ada, f"/together/place/{place.id}/turn", {"text": wave}, token_from="/together/table/"
    )
    assert first.status_code == 302
    assert "Bo's turn" in text(ada.get("/together/place/"))
    assert "Ada added to your place" in text(bo.get("/"))
    page = text(bo.get("/together/place/"))
    assert wave in page and "Your turn" in page
    foam = "The water foams and rolls back"
    post_form(bo, f"/together/place/{place.id}/turn", {"text": foam}, token_from="/together/table/")
    too_long = post_form(
        ada, f"/together/place/{place.id}/turn", {"text": "y" * 601}, token_from="/together/table/"
    )
    assert too_long.status_code == 422
    post_form(bo, f"/together/place/{place.id}/end", token_from="/together/place/")
    page = text(ada.get("/together/place/"))
    assert "Start a place" in page and f"/together/place/{place.id}" in page
    ended = text(ada.get(f"/together/place/{place.id}"))
    assert wave in ended and foam in ended and "Your turn" not in ended
    with app.app_context():
        assert [t.seq for t in db.session.scalars(select(PlaceTurn).order_by(PlaceTurn.seq))] == [
            1,
            2,
        ]


def test_a_starter_link_fills_the_lines_of_the_turn(app, couple):
    ada, _ = couple
    post_form(ada, "/together/place/start", {"name": ""}, token_from="/together/place/")
    page = text(ada.get("/together/place/"))
    starter = re.search(r"/together/place/\?starter=([^\"]+)\"", page).group(1)
    filled = text(ada.get(f"/together/place/?starter={starter}"))
    assert re.search(r'<textarea[^>]*name="text"[^>]*>\s*\S', filled)


def test_an_agreement_is_proposed_accepted_and_ended_without_saying_who(app, couple):
    ada, bo = couple
    today = date.today().isoformat()
    proposed = post_form(
        ada,
        "/together/agreements/new",
        {"shipped": "evening-listening", "text": "", "starts_on": today, "ends_on": ""},
    )
    assert proposed.status_code == 302
    agreement = one(app, Agreement)
    assert "proposed" in text(ada.get("/together/agreements/"))
    assert "Ada proposed an agreement" in text(bo.get("/"))
    page = text(bo.get("/together/agreements/"))
    assert "The evening listening" in page and "I agree" in page
    assert "I agree" not in text(ada.get("/together/agreements/"))  # not to one's own
    post_form(bo, f"/together/agreements/{agreement.id}/accept", token_from="/together/agreements/")
    assert "in effect" in text(ada.get("/together/agreements/"))
    post_form(ada, f"/together/agreements/{agreement.id}/end", token_from="/together/agreements/")
    page = text(bo.get("/together/agreements/"))
    assert ">ended<" in page and "Ada ended" not in page and "You ended" not in page
    with app.app_context():
        assert set(Agreement.__table__.columns.keys()).isdisjoint({"ended_by_id", "ended_by"})


def test_an_agreement_in_own_words_needs_a_start_day_and_keeps_the_words(app, couple):
    ada, _ = couple
    words = "No phones in the bedroom for a month"
    response = post_form(
        ada, "/together/agreements/new", {"shipped": "own", "text": words, "starts_on": ""}
    )
    assert response.status_code == 422 and words in text(response)
    late = (date.today() - timedelta(days=1)).isoformat()
    response = post_form(
        ada,
        "/together/agreements/new",
        {"shipped": "own", "text": words, "starts_on": date.today().isoformat(), "ends_on": late},
    )
    assert response.status_code == 422 and "last day" in text(response)


def test_the_listening_timer_shows_who_speaks_and_stores_nothing(app, couple):
    ada, _ = couple
    page = text(ada.get("/together/agreements/listen"))
    assert "5 minutes" in page and "15 minutes" in page
    with app.app_context():
        before = {t.name: db.session.execute(t.select()).all() for t in db.metadata.sorted_tables}
    shown = ada.get("/together/agreements/listen?minutes=15&speaker=partner")
    page = text(shown)
    assert shown.status_code == 200 and 'data-timer="900"' in page
    assert "<strong>Bo</strong> speaks" in page and "<strong>You</strong> listen" in page
    assert "js/timer.js" in page
    assert "Set-Cookie" not in shown.headers
    with app.app_context():
        after = {t.name: db.session.execute(t.select()).all() for t in db.metadata.sorted_tables}
    before.pop("key_sessions"), after.pop("key_sessions")  # last use of the login's keys
    assert before == after
    assert 'data-timer="' not in text(ada.get("/together/agreements/listen?minutes=7"))


def test_words_written_while_the_keys_locked_are_handed_back(app, couple):
    ada, _ = couple
    token = csrf_token(ada, "/together/table/")
    with app.app_context():
        db.session.execute(delete(KeySession))
        db.session.commit()
    words = "I miss reading aloud to each other"
    response = ada.post("/together/table/", data={"text": words, "csrf_token": token})
    assert response.status_code == 401 and words in text(response)
    assert "/unlock" in text(response)
    with app.app_context():
        assert db.session.scalars(select(RitualItem)).all() == []


def test_shipped_texts_read_in_each_partners_own_language(app, couple):
    ada, bo = couple
    with app.app_context():
        db.session.execute(update(User).where(User.email == "bo@example.com").values(language="ru"))
        db.session.commit()
    en = practice_texts.shipped("en").agreement("evening-listening")
    ru = practice_texts.shipped("ru").agreement("evening-listening")
    # Bo proposes from the Russian list; Ada reads the agreement in English, Bo in Russian.
    assert ru.title in text(bo.get("/together/agreements/new"))
    today = date.today().isoformat()
    proposed = post_form(
        bo,
        "/together/agreements/new",
        {"shipped": "evening-listening", "text": "", "starts_on": today, "ends_on": ""},
    )
    assert proposed.status_code == 302
    page = text(ada.get("/together/agreements/"))
    assert en.title in page and en.text in page and ru.title not in page
    page = text(bo.get("/together/agreements/"))
    assert ru.title in page and ru.text in page and en.title not in page
    # A place's starters are offered in the language of whoever has the turn.
    post_form(bo, "/together/place/start", {"name": ""}, token_from="/together/place/")
    page = text(bo.get("/together/place/"))
    offered = re.findall(r"/together/place/\?starter=([^\"]+)\"", page)
    starters = {unquote_plus(s) for s in offered}
    assert len(starters) == 3 and starters <= set(practice_texts.shipped("ru").place_starters)
    filled = text(bo.get(f"/together/place/?starter={offered[0]}"))
    assert re.search(r'<textarea[^>]*name="text"[^>]*>\s*\S', filled)
