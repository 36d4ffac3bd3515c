"""Notes through the pages: write, read, answer, delete, past pairs, and words never lost."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from wishnotes import notes as notes_service
from wishnotes.extensions import db
from wishnotes.models import KeySession, Note, Pair, User

from .conftest import PASSWORD, csrf_token, login, pair_users, post_form, register_user

WISH = "I would like us to cook together on Friday."


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


def send(client, body: str = WISH, **fields):
    return post_form(client, "/notes/new", {"body": body, **fields})


def only_note(app) -> Note:
    with app.app_context():
        return db.session.scalars(select(Note)).one()


def note_count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Note.id)).all())


def text(response) -> str:
    return response.get_data(as_text=True)


def test_a_note_goes_from_compose_to_the_partners_inbox_and_opens(app, couple):
    ada, bo = couple
    sent = send(ada, title="Friday")
    assert sent.status_code == 302 and sent.headers["Location"] == "/notes/sent"
    note = only_note(app)
    inbox = text(bo.get("/notes/"))
    assert "From Ada" in inbox and "New" in inbox and f"/notes/{note.id}" in inbox
    assert WISH not in inbox and "Friday" not in inbox  # sender and date only
    assert "A note is waiting for you" in text(bo.get("/"))
    page = bo.get(f"/notes/{note.id}")
    assert page.status_code == 200
    assert WISH in text(page) and "Friday" in text(page)
    assert "New" not in text(bo.get("/notes/"))
    assert "A note is waiting for you" not in text(bo.get("/"))
    mine = text(ada.get("/notes/sent"))
    assert "To Bo" in mine and WISH not in mine
    assert WISH in text(ada.get(f"/notes/{note.id}"))


def test_compose_page_has_labels_autocomplete_and_no_inline_script_or_style(app, couple):
    ada, _ = couple
    for path in ("/notes/new", "/notes/", "/notes/sent", "/notes/past"):
        page = text(ada.get(path))
        assert "<script>" not in page and "style=" not in page and " onclick=" not in page, path
    compose = text(ada.get("/notes/new"))
    assert '<label for="body"' in compose and '<label for="title"' in compose
    assert 'maxlength="4000"' in compose and 'autocomplete="off"' in compose
    assert 'name="password"' not in compose  # keys are unlocked: no password needed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"body": ""}, "Please write your note first."),
        ({"body": "x" * 4001}, "under 4,000 characters"),
        ({"body": WISH, "title": "t" * 121}, "under 120 characters"),
        ({"body": WISH, "prompt_key": "../../etc"}, "prompt is not known"),
        ({"body": "nul \x00 inside"}, "cannot be shown"),
    ],
)
def test_bad_compose_input_gets_422_a_clear_message_and_keeps_the_words(
    app, couple, fields, message
):
    ada, _ = couple
    response = send(ada, **fields)
    assert response.status_code == 422
    assert message in text(response)
    if fields["body"] and "\x00" not in fields["body"]:
        assert fields["body"][:50] in text(response)
    assert note_count(app) == 0


def test_words_survive_a_lock_while_writing_and_send_after_the_password(app, couple):
    ada, _ = couple
    with app.app_context():
        db.session.query(KeySession).delete()
        db.session.commit()
    page = text(ada.get("/notes/new"))
    assert 'name="password"' in page and 'autocomplete="current-password"' in page
    locked = send(ada, title="Friday")
    assert locked.status_code == 422
    assert WISH in text(locked) and "Friday" in text(locked) and "locked themselves" in text(locked)
    wrong = send(ada, password="not my password", title="Friday")
    assert wrong.status_code == 422 and WISH in text(wrong) and "does not match" in text(wrong)
    assert note_count(app) == 0
    sent = send(ada, password=PASSWORD)
    assert sent.status_code == 302
    assert any(c.startswith("wn_keys=") for c in sent.headers.getlist("Set-Cookie"))
    assert note_count(app) == 1
    # The new key session works for the next page too.
    assert WISH in text(ada.get(f"/notes/{only_note(app).id}"))


def test_a_stale_form_gives_the_words_back(app, couple):
    ada, _ = couple
    response = ada.post("/notes/new", data={"body": WISH, "csrf_token": "stale"})
    assert response.status_code == 400
    assert WISH in text(response) and "Your note is still here" in text(response)
    assert note_count(app) == 0


def test_signed_out_in_another_tab_the_words_are_handed_back(app, couple):
    ada, _ = couple
    token = csrf_token(ada, "/notes/new")
    post_form(ada, "/logout", token_from="/settings/")
    response = ada.post("/notes/new", data={"body": WISH, "csrf_token": token})
    assert response.status_code in (400, 401)
    assert WISH in text(response)
    assert note_count(app) == 0


def test_compose_without_a_partner_leads_to_pairing(app):
    register_user(app)
    client = app.test_client()
    login(client)
    response = client.get("/notes/new")
    assert response.status_code == 302 and response.headers["Location"] == "/pair/"
    assert "Notes are for two" in text(client.get("/notes/"))


def test_locked_keys_lead_to_unlock_when_opening(app, couple):
    ada, bo = couple
    send(ada)
    note = only_note(app)
    with app.app_context():
        db.session.query(KeySession).delete()
        db.session.commit()
    response = bo.get(f"/notes/{note.id}")
    assert response.status_code == 302 and "/unlock" in response.headers["Location"]
    unlocked = post_form(bo, f"/unlock?next=/notes/{note.id}", {"password": PASSWORD})
    assert unlocked.headers["Location"] == f"/notes/{note.id}"
    assert WISH in text(bo.get(f"/notes/{note.id}"))


def test_answers_read_gently_to_the_writer_and_can_change(app, couple):
    ada, bo = couple
    send(ada)
    note = only_note(app)
    page = text(bo.get(f"/notes/{note.id}"))
    for label in ("Yes, let&#39;s", "Maybe later", "Let&#39;s talk about it"):
        assert label in page
    answer_url = f"/notes/{note.id}/answer"
    later = post_form(bo, answer_url, {"choice": "later"}, token_from=f"/notes/{note.id}")
    assert later.status_code == 302
    seen = text(ada.get(f"/notes/{note.id}")).lower()
    assert "keeping this one for later" in seen
    for harsh in ("refus", "declin", "reject", " no.", "not interested"):
        assert harsh not in seen
    assert "You answered: Maybe later" in text(bo.get(f"/notes/{note.id}"))
    post_form(bo, answer_url, {"choice": "yes"}, token_from=f"/notes/{note.id}")
    assert "answered: Yes, let&#39;s" in text(ada.get(f"/notes/{note.id}"))
    bad = post_form(bo, answer_url, {"choice": "never"}, token_from=f"/notes/{note.id}")
    assert bad.status_code == 422 and "choose one of the answers" in text(bad)
    assert "Answered" in text(ada.get("/notes/sent"))


def test_writer_deletes_a_note_after_confirming_and_it_is_gone_for_both(app, couple):
    ada, bo = couple
    send(ada)
    note = only_note(app)
    confirm = ada.get(f"/notes/{note.id}/delete")
    assert confirm.status_code == 200 and "gone for both of you" in text(confirm)
    assert bo.get(f"/notes/{note.id}/delete").status_code == 404  # not Bo's to delete
    deleted = post_form(ada, f"/notes/{note.id}/delete")
    assert deleted.status_code == 302 and note_count(app) == 0
    assert bo.get(f"/notes/{note.id}").status_code == 404


def test_unpairing_with_the_choice_deletes_only_the_chosen_notes(app, couple):
    ada, bo = couple
    send(ada, "from ada")
    send(bo, "from bo")
    page = text(ada.get("/pair/unpair"))
    assert "Also delete the notes I wrote" in page
    assert 'name="delete_my_notes"' in page and "checked" not in page
    ended = post_form(ada, "/pair/unpair", {"confirm": "y", "delete_my_notes": "y"})
    assert ended.status_code == 302
    with app.app_context():
        left = db.session.scalars(select(Note)).all()
        assert [n.sender_id for n in left] == [
            db.session.scalar(select(User.id).filter_by(email="bo@example.com"))
        ]
    assert "Your pair has ended" in text(bo.get("/"))
    assert "from bo" not in text(bo.get("/notes/"))
    past = text(ada.get("/notes/past"))
    assert "From Bo" in past
    note_id = left[0].id
    assert "from bo" in text(ada.get(f"/notes/past/{note_id}"))
    assert ada.get(f"/notes/{note_id}").status_code == 404  # no longer in a current pair
    # Bo chooses later, from the past notes page, and must confirm.
    assert post_form(bo, "/notes/past/delete", {}, token_from="/notes/past").status_code == 422
    done = post_form(bo, "/notes/past/delete", {"confirm": "y"}, token_from="/notes/past")
    assert done.status_code == 302 and note_count(app) == 0


def test_inbox_cursors_that_are_not_cursors_show_the_newest_notes(app, couple):
    ada, bo = couple
    send(ada)
    for cursor in ("abc", "-5", "0", "99999999999999999999999", "%00%ff", "x" * 3000):
        response = bo.get(f"/notes/?before={cursor}")
        assert response.status_code == 200, cursor
        assert "From Ada" in text(response), cursor
    # Links from before paging by cursor still land on the newest notes.
    assert "From Ada" in text(bo.get("/notes/?page=2"))


def test_pages_need_a_login(client):
    for path in ("/notes/", "/notes/sent", "/notes/new", "/notes/past", "/notes/" + "a" * 32):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_a_pair_that_ended_shows_on_home_for_the_partner_left_behind(app, couple):
    ada, bo = couple
    post_form(ada, "/pair/unpair", {"confirm": "y"})
    assert "Your pair has ended" in text(bo.get("/"))
    with app.app_context():
        assert db.session.scalars(select(Pair.ended_at)).one() is not None


def test_a_note_id_in_the_wrong_shape_is_simply_not_found(app, couple):
    ada, _ = couple
    for note_id in ("x", "A" * 32, "0" * 5000, "%00", "..%2F..%2Fetc"):
        assert ada.get(f"/notes/{note_id}").status_code == 404, note_id
    assert re.search("There is no note at this address", text(ada.get("/notes/" + "0" * 32)))


def test_a_prompt_key_from_the_week_rides_along_with_the_note(app, couple):
    ada, _ = couple
    page = ada.get("/notes/new?prompt=wishes-2").get_data(as_text=True)
    assert 'name="prompt_key" type="hidden" value="wishes-2"' in page
    unknown = ada.get("/notes/new?prompt=first-touch").get_data(as_text=True)
    assert 'name="prompt_key" type="hidden" value=""' in unknown
    assert send(ada, prompt_key="wishes-2").status_code == 302
    assert only_note(app).prompt_key == "wishes-2"


def test_answering_with_locked_keys_comes_back_to_the_note(app, couple):
    ada, bo = couple
    send(ada)
    note = only_note(app)
    token = csrf_token(bo, f"/notes/{note.id}")
    with app.app_context():
        db.session.query(KeySession).delete()
        db.session.commit()
    response = bo.post(f"/notes/{note.id}/answer", data={"choice": "yes", "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/unlock?next=/notes/{note.id}"
    assert only_note(app).answer_envelope is None


def test_password_tries_on_the_compose_page_are_rate_limited_and_keep_the_words(
    tmp_path, postgres_engine
):
    from .conftest import make_app, reset_database

    app = make_app(
        tmp_path, postgres_engine, RATELIMIT_ENABLED=True, LOGIN_LIMIT_PER_ACCOUNT="3 per minute"
    )
    reset_database(app)
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    ada = app.test_client()
    login(ada)
    with app.app_context():
        db.session.query(KeySession).delete()
        db.session.commit()
    # The sign-in was the account's first password check of the minute (one shared budget).
    assert send(ada).status_code == 422  # no password typed: not a try, not counted
    codes = [send(ada, password="a wrong guess here").status_code for _ in range(3)]
    assert codes == [422, 422, 429]
    limited = send(ada, password=PASSWORD)
    assert limited.status_code == 429 and WISH in text(limited)
    assert note_count(app) == 0


def test_a_note_title_is_shown_inside_the_blurred_body_not_in_the_heading(app, couple):
    ada, bo = couple
    send(ada, title="Friday evening")
    page = text(bo.get("/notes/" + only_note(app).id))
    heading = re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)
    assert "Friday evening" not in heading
    body = re.search(r'<div class="note-body">(.*?)</div>', page, re.S).group(1)
    assert "Friday evening" in body


def test_inbox_marks_unread_notes_until_opened_and_pages_through_older_ones(
    app, couple, monkeypatch
):
    ada, bo = couple
    monkeypatch.setattr(notes_service, "PAGE_SIZE", 2)
    for _ in range(3):
        assert send(ada).status_code == 302
    first = text(bo.get("/notes/"))
    assert first.count('class="card unread"') == 2 and first.count(">New<") == 2
    earlier = re.search(r'<a href="(/notes/\?before=[^"]+)">Earlier notes</a>', first).group(1)
    second = text(bo.get(earlier))
    assert second.count('class="card unread"') == 1 and "Earlier notes" not in second
    note_id = re.search(r'href="/notes/([0-9a-f]{32})"', first).group(1)
    bo.get(f"/notes/{note_id}")
    assert text(bo.get("/notes/")).count('class="card unread"') == 1
    # The older note is deleted meanwhile: the link from the first page leads to a calm end.
    oldest = re.search(r'href="/notes/([0-9a-f]{32})"', second).group(1)
    post_form(ada, f"/notes/{oldest}/delete", {})
    assert "There are no earlier notes" in text(bo.get(earlier))
    sent = text(ada.get("/notes/sent"))
    assert 'class="card unread"' not in sent and sent.count(">To Bo<") == 2
