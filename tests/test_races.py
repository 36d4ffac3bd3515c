"""Double clicks and races between two people, as real concurrent requests (SQLite and PostgreSQL).

A form that creates something carries a one-time submission key: the same form posted twice,
even at the same moment, creates one thing and both posts show it. Sending while the partner
ends the pair or deletes their account, and two people accepting each other's invites at once,
end in a clear outcome, never a 500 or a deadlock.
"""

from __future__ import annotations

import html
import re
import threading
from datetime import date

import pytest
import sqlalchemy as sa

from wishnotes.extensions import db
from wishnotes.models import (
    Agreement,
    Invite,
    Note,
    Pair,
    Place,
    PlaceTurn,
    ProgramWeek,
    RitualItem,
    User,
)

from .concurrency import hold_before, meet_after, run_together
from .conftest import CSRF_RE, PASSWORD, login, pair_users, post_form, register_user

TEXT = "Let's try the little café by the river, just us two."
SUBMISSION_KEY_RE = re.compile(r'name="submission_key" type="hidden" value="([^"]+)"')


def _form_fields(page: str) -> dict:
    csrf = CSRF_RE.search(page)
    key = SUBMISSION_KEY_RE.search(page)
    assert csrf and key, "the form carries a CSRF token and a submission key"
    return {"csrf_token": csrf.group(1) or csrf.group(2), "submission_key": key.group(1)}


def _twin(app, client):
    """A second browser tab: another client with the same cookies (the same session)."""
    other = app.test_client()
    for cookie in client._cookies.values():
        other.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return other


def _count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _engine(app):
    with app.app_context():
        return db.engine


@pytest.fixture
def people(app):
    """Ada and Bo, signed in (notes unlocked) in their own browsers; not paired yet."""
    ada_id, _ = register_user(app)
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    ada, bo = app.test_client(), app.test_client()
    assert login(ada).status_code == 302
    assert login(bo, "bo@example.com").status_code == 302
    return {"ada": ada, "bo": bo, "ada_id": ada_id, "bo_id": bo_id}


@pytest.fixture
def paired(app, people):
    pair_users(app, people["ada_id"], people["bo_id"])
    return people


# --- one submission, one result ------------------------------------------------------------


def test_a_double_click_on_send_makes_one_note(app, paired):
    ada = paired["ada"]
    form = {**_form_fields(ada.get("/notes/new").get_data(as_text=True)), "body": TEXT}
    tab = _twin(app, ada)
    # Both posts have looked for an earlier note with this key (none yet) before either sends.
    with meet_after(_engine(app), r"FROM notes\s+WHERE notes\.sender_id = \S+ AND", 2):
        first, second = run_together(
            lambda: ada.post("/notes/new", data=form), lambda: tab.post("/notes/new", data=form)
        )
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"] == "/notes/sent"
    assert _count(app, Note) == 1


def test_a_compose_form_sent_again_shows_the_first_note(app, paired):
    ada = paired["ada"]
    form = {**_form_fields(ada.get("/notes/new").get_data(as_text=True)), "body": TEXT}
    assert ada.post("/notes/new", data=form).status_code == 302
    again = ada.post("/notes/new", data=form, follow_redirects=True)
    assert again.status_code == 200
    assert "Your note is on its way" in again.get_data(as_text=True)
    assert _count(app, Note) == 1
    fresh = {**_form_fields(ada.get("/notes/new").get_data(as_text=True)), "body": TEXT}
    assert fresh["submission_key"] != form["submission_key"]  # a new form, a new key
    assert ada.post("/notes/new", data=fresh).status_code == 302
    assert _count(app, Note) == 2


def test_a_double_click_on_make_invite_shows_one_link(app, people):
    ada = people["ada"]
    form = _form_fields(ada.get("/pair/").get_data(as_text=True))
    tab = _twin(app, ada)
    with meet_after(_engine(app), r"FROM invites\s+WHERE invites\.token_hash", 2):
        first, second = run_together(
            lambda: ada.post("/pair/invite", data=form), lambda: tab.post("/pair/invite", data=form)
        )
    assert first.status_code == second.status_code == 200
    links = [
        re.search(r"/pair/join/[\w-]+", r.get_data(as_text=True)).group(0) for r in (first, second)
    ]
    assert links[0] == links[1]
    assert _count(app, Invite) == 1
    # The link shown works: Bo joins with it.
    bo = people["bo"]
    joined = post_form(bo, links[0], {})
    assert joined.status_code == 302
    assert _count(app, Pair, Pair.ended_at.is_(None)) == 1


def test_a_double_click_on_start_week_starts_one_week(app, paired):
    ada = paired["ada"]
    page = ada.get("/week/").get_data(as_text=True)
    theme = re.search(r'<option[^>]*value="([^"]+)"', page).group(1)
    form = {
        **_form_fields(page),
        "theme": theme,
        "start_date": date.today().isoformat(),
        "timezone": "UTC",
    }
    tab = _twin(app, ada)
    with meet_after(_engine(app), r"FROM program_weeks\s+WHERE program_weeks\.started_by_id", 2):
        first, second = run_together(
            lambda: ada.post("/week/start", data=form), lambda: tab.post("/week/start", data=form)
        )
    assert first.status_code == second.status_code == 302
    assert _count(app, ProgramWeek) == 1


def _kit_groups(page: str) -> list[str]:
    return re.findall(r"<code>([A-Z2-7]{4})</code>", page)


def _register_form(client) -> dict:
    page = client.get("/register").get_data(as_text=True)
    return {
        **_form_fields(page),
        "email": "ada@example.com",
        "display_name": "Ada",
        "password": PASSWORD,
    }


def test_a_double_click_on_register_makes_one_account_and_signs_in_once(app):
    browser = app.test_client()
    form = _register_form(browser)
    tab = _twin(app, browser)
    # Both posts have found no account with the address before either creates one.
    with meet_after(_engine(app), r"FROM users\s+WHERE users\.email =", 2):
        responses = run_together(
            lambda: browser.post("/register", data=form), lambda: tab.post("/register", data=form)
        )
    assert sorted(r.status_code for r in responses) == [200, 302]
    kit, again = sorted(responses, key=lambda r: r.status_code)
    groups = _kit_groups(kit.get_data(as_text=True))
    assert len(groups) == 8
    # The other post shows the first one's result: the account, signed in, never the key again.
    assert again.headers["Location"] == "/"
    assert not any(group in again.get_data(as_text=True) for group in groups)
    assert _count(app, User) == 1
    signed_in = browser if responses[1] is kit else tab
    assert signed_in.get("/").headers["Location"] == "/recovery-kit/"
    # Its notes are open: it can make the kit the first post showed to nobody.
    new_kit = post_form(signed_in, "/recovery-kit/new", {}, token_from="/recovery-kit/")
    assert new_kit.status_code == 200
    assert len(_kit_groups(new_kit.get_data(as_text=True))) == 8


def test_a_register_form_sent_again_signs_in_and_never_shows_the_kit_again(app):
    browser = app.test_client()
    form = _register_form(browser)
    # The same form in other tabs, posted after the first answer (which they never saw).
    tab, other_tab = _twin(app, browser), _twin(app, browser)
    first = browser.post("/register", data=form)
    assert first.status_code == 200
    groups = _kit_groups(first.get_data(as_text=True))
    assert len(groups) == 8

    again = tab.post("/register", data=form)
    assert again.status_code == 302 and again.headers["Location"] == "/"
    assert not any(group in again.get_data(as_text=True) for group in groups)
    assert tab.get("/").headers["Location"] == "/recovery-kit/"  # signed in
    page = tab.get("/recovery-kit/").get_data(as_text=True)
    assert not any(group in page for group in groups)
    assert _count(app, User) == 1
    # The browser that saw the kit, posting once more, is signed in already: back to the kit.
    assert browser.post("/register", data=form).headers["Location"] == "/recovery-kit/"

    # The same key with another password is not the same person's form: the address is taken.
    changed = other_tab.post("/register", data={**form, "password": PASSWORD + " again"})
    assert changed.status_code == 422
    assert "An account with this email already exists." in changed.get_data(as_text=True)
    # A different form with the same address: the address is taken.
    someone = app.test_client()
    refused = someone.post("/register", data=_register_form(someone))
    assert refused.status_code == 422
    assert "An account with this email already exists." in refused.get_data(as_text=True)
    assert "/login" in someone.get("/recovery-kit/").headers["Location"]  # not signed in
    assert _count(app, User) == 1


def _table_form(client) -> dict:
    page = client.get("/together/table/").get_data(as_text=True)
    return {**_form_fields(page), "text": "I miss our Sunday pancakes"}


def test_a_double_click_on_add_to_the_table_adds_one_item(app, paired):
    ada = paired["ada"]
    form = _table_form(ada)
    tab = _twin(app, ada)
    with meet_after(_engine(app), r"FROM ritual_items\s+WHERE ritual_items\.author_id", 2):
        first, second = run_together(
            lambda: ada.post("/together/table/", data=form),
            lambda: tab.post("/together/table/", data=form),
        )
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(app, RitualItem) == 1
    with app.app_context():
        item_id = db.session.scalar(sa.select(RitualItem.id))
    assert first.headers["Location"] == f"/together/table/#item-{item_id}"


def test_a_table_form_sent_again_shows_the_first_item(app, paired):
    ada = paired["ada"]
    form = _table_form(ada)
    assert ada.post("/together/table/", data=form).status_code == 302
    again = ada.post("/together/table/", data=form, follow_redirects=True)
    assert again.status_code == 200
    assert "It is on your table now." in again.get_data(as_text=True)
    assert _count(app, RitualItem) == 1
    assert ada.post("/together/table/", data=_table_form(ada)).status_code == 302
    assert _count(app, RitualItem) == 2  # a new form, a new item


def _start_form(client) -> dict:
    return {**_form_fields(client.get("/together/place/").get_data(as_text=True)), "name": "Sea"}


BEGUN = "Your place has begun. You write the first lines."


def test_a_double_click_on_start_a_place_starts_one(app, paired):
    ada = paired["ada"]
    form = _start_form(ada)
    tab = _twin(app, ada)
    # Both have found no open place before either starts one.
    with meet_after(_engine(app), r"FROM places\s+WHERE places\.pair_id", 2):
        first, second = run_together(
            lambda: ada.post("/together/place/start", data=form, follow_redirects=True),
            lambda: tab.post("/together/place/start", data=form, follow_redirects=True),
        )
    assert first.status_code == second.status_code == 200
    for response in (first, second):
        page = html.unescape(response.get_data(as_text=True))
        assert BEGUN in page and "A place is already open" not in page
    assert _count(app, Place) == 1


def test_a_start_place_form_sent_again_shows_the_first_place(app, paired):
    ada = paired["ada"]
    form = _start_form(ada)
    assert ada.post("/together/place/start", data=form).status_code == 302
    again = ada.post("/together/place/start", data=form, follow_redirects=True)
    page = html.unescape(again.get_data(as_text=True))
    assert again.status_code == 200 and BEGUN in page and "already open" not in page
    assert _count(app, Place) == 1
    # Once that place has ended, the old form still shows it, and starts nothing new.
    with app.app_context():
        place_id = db.session.scalar(sa.select(Place.id))
    ended = post_form(ada, f"/together/place/{place_id}/end", {}, token_from="/together/place/")
    assert ended.status_code == 302
    late = ada.post("/together/place/start", data=form)
    assert late.status_code == 302 and late.headers["Location"] == f"/together/place/{place_id}"
    assert _count(app, Place) == 1
    # A new form starts a new place; a different form while one is open is told so.
    assert ada.post("/together/place/start", data=_start_form(ada)).status_code == 302
    assert _count(app, Place) == 2
    other = ada.post("/together/place/start", data=_start_form(ada), follow_redirects=True)
    assert "A place is already open" in html.unescape(other.get_data(as_text=True))
    assert _count(app, Place) == 2


def _turn_form(app, client) -> tuple[str, dict]:
    with app.app_context():
        place_id = db.session.scalar(sa.select(Place.id).where(Place.ended_at.is_(None)))
    page = client.get("/together/place/").get_data(as_text=True)
    return place_id, {**_form_fields(page), "text": "I see the sea, a wave breaks on the shore."}


def test_a_double_click_on_add_my_lines_adds_one_turn(app, paired):
    ada = paired["ada"]
    assert ada.post("/together/place/start", data=_start_form(ada)).status_code == 302
    place_id, form = _turn_form(app, ada)
    tab = _twin(app, ada)
    url = f"/together/place/{place_id}/turn"
    # Both have read the same last turn before either writes the next one.
    with meet_after(_engine(app), r"FROM place_turns\s+WHERE place_turns\.place_id", 2):
        first, second = run_together(
            lambda: ada.post(url, data=form), lambda: tab.post(url, data=form)
        )
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"] == "/together/place/#latest"
    assert _count(app, PlaceTurn) == 1


def test_a_turn_form_sent_again_shows_the_first_turn(app, paired):
    ada, bo = paired["ada"], paired["bo"]
    assert ada.post("/together/place/start", data=_start_form(ada)).status_code == 302
    place_id, form = _turn_form(app, ada)
    url = f"/together/place/{place_id}/turn"
    assert ada.post(url, data=form).status_code == 302
    again = ada.post(url, data=form)
    assert again.status_code == 302 and again.headers["Location"] == "/together/place/#latest"
    assert _count(app, PlaceTurn) == 1
    # Still after the partner's turn: the old form adds nothing more.
    (_, bo_form), (_, bo_other_tab) = _turn_form(app, bo), _turn_form(app, bo)
    assert bo.post(url, data={**bo_form, "text": "The water foams."}).status_code == 302
    assert ada.post(url, data=form).status_code == 302
    assert _count(app, PlaceTurn) == 2
    # A different form when it is not your turn is told so, calmly.
    calm = bo.post(url, data={**bo_other_tab, "text": "And again."})
    assert calm.status_code == 422
    assert "your partner's turn" in html.unescape(calm.get_data(as_text=True))
    assert _count(app, PlaceTurn) == 2


def _agreement_form(client) -> dict:
    page = client.get("/together/agreements/new").get_data(as_text=True)
    return {
        **_form_fields(page),
        "shipped": "own",
        "text": "Phones away at dinner.",
        "starts_on": date.today().isoformat(),
    }


PROPOSED = "Your proposal is waiting for your partner."


def test_a_double_click_on_propose_makes_one_agreement(app, paired):
    ada = paired["ada"]
    form = _agreement_form(ada)
    tab = _twin(app, ada)
    with meet_after(_engine(app), r"FROM agreements\s+WHERE agreements\.proposer_id", 2):
        first, second = run_together(
            lambda: ada.post("/together/agreements/new", data=form),
            lambda: tab.post("/together/agreements/new", data=form),
        )
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(app, Agreement) == 1
    with app.app_context():
        agreement_id = db.session.scalar(sa.select(Agreement.id))
    assert first.headers["Location"] == f"/together/agreements/#agreement-{agreement_id}"


def test_an_agreement_form_sent_again_shows_the_first_proposal(app, paired):
    ada = paired["ada"]
    form = _agreement_form(ada)
    assert ada.post("/together/agreements/new", data=form).status_code == 302
    again = ada.post("/together/agreements/new", data=form, follow_redirects=True)
    assert again.status_code == 200
    assert PROPOSED in html.unescape(again.get_data(as_text=True))
    assert _count(app, Agreement) == 1
    assert ada.post("/together/agreements/new", data=_agreement_form(ada)).status_code == 302
    assert _count(app, Agreement) == 2  # a new form, a new proposal


# --- races between the two of them ------------------------------------------------------------

# The sender's request, held after it has loaded the partner and just before its first write
# (SQLite has one writer: once the sender writes, nothing else can), so the partner's change
# lands between what the sender read and the note it stores.
FIRST_WRITE = r"^\s*(INSERT|UPDATE|DELETE)\b"


def _send_while(app, sender, partner_action):
    """Send a note from `sender`, while `partner_action` runs and completes in the meantime."""
    form = {**_form_fields(sender.get("/notes/new").get_data(as_text=True)), "body": TEXT}
    with hold_before(_engine(app), FIRST_WRITE) as hold:
        results = []

        def send():
            results.append(sender.post("/notes/new", data=form))

        thread = threading.Thread(target=send)
        thread.start()
        hold.wait_until_reached()
        partner_action()
        hold.release()
        thread.join(60)
    assert not thread.is_alive()
    return results[0]


def test_a_note_sent_while_the_partner_ends_the_pair_comes_back(app, paired):
    ada, bo = paired["ada"], paired["bo"]

    def unpair():
        assert post_form(ada, "/pair/unpair", {"confirm": "y"}).status_code == 302

    sent = _send_while(app, bo, unpair)
    assert sent.status_code == 422
    page = html.unescape(sent.get_data(as_text=True))
    assert "Your pair ended while you were writing" in page
    assert TEXT in page  # handed back in the form
    assert _count(app, Note) == 0


def test_a_note_sent_while_the_partner_deletes_their_account_comes_back(app, paired):
    ada, bo = paired["ada"], paired["bo"]

    def delete_account():
        deleted = post_form(ada, "/settings/delete", {"password": PASSWORD, "confirm": "y"})
        assert deleted.status_code == 302

    sent = _send_while(app, bo, delete_account)
    assert sent.status_code == 422
    page = html.unescape(sent.get_data(as_text=True))
    assert "Your pair ended while you were writing" in page and TEXT in page
    assert _count(app, Note) == 0
    assert _count(app, User) == 1


def test_ending_the_pair_from_both_sides_at_once_ends_it_once(app, paired):
    ada, bo = paired["ada"], paired["bo"]
    forms = [{**_csrf(c, "/pair/unpair"), "confirm": "y"} for c in (ada, bo)]
    first, second = run_together(
        lambda: ada.post("/pair/unpair", data=forms[0], follow_redirects=True),
        lambda: bo.post("/pair/unpair", data=forms[1], follow_redirects=True),
    )
    assert first.status_code == second.status_code == 200
    assert _count(app, Pair, Pair.ended_at.is_(None)) == 0
    assert _count(app, User, User.pair_id.is_not(None)) == 0


def test_two_people_accepting_each_others_invites_at_once_are_paired(app, people):
    ada, bo = people["ada"], people["bo"]
    ada_link, bo_link = (_invite_token(client) for client in (ada, bo))
    ada_form = _csrf(ada, f"/pair/join/{bo_link}")
    bo_form = _csrf(bo, f"/pair/join/{ada_link}")
    # Each claims the other's invite, then both go on at once: this deadlocked on PostgreSQL.
    with meet_after(_engine(app), r"UPDATE invites SET used_at", 2):
        first, second = run_together(
            lambda: ada.post(f"/pair/join/{bo_link}", data=ada_form, follow_redirects=True),
            lambda: bo.post(f"/pair/join/{ada_link}", data=bo_form, follow_redirects=True),
        )
    assert first.status_code == second.status_code == 200
    assert "are now paired" in first.get_data(as_text=True)
    assert "are now paired" in second.get_data(as_text=True)
    assert _count(app, Pair, Pair.ended_at.is_(None)) == 1
    with app.app_context():
        ada_user = db.session.get(User, people["ada_id"])
        bo_user = db.session.get(User, people["bo_id"])
        assert ada_user.pair_id is not None and ada_user.pair_id == bo_user.pair_id


def _invite_token(client) -> str:
    form = _form_fields(client.get("/pair/").get_data(as_text=True))
    page = client.post("/pair/invite", data=form).get_data(as_text=True)
    return re.search(r"/pair/join/([\w-]+)", page).group(1)


def _csrf(client, url: str) -> dict:
    match = CSRF_RE.search(client.get(url).get_data(as_text=True))
    assert match, url
    return {"csrf_token": match.group(1) or match.group(2)}


def test_an_answer_sent_twice_at_once_is_one_answer(app, paired):
    ada, bo = paired["ada"], paired["bo"]
    form = {**_form_fields(ada.get("/notes/new").get_data(as_text=True)), "body": TEXT}
    assert ada.post("/notes/new", data=form).status_code == 302
    with app.app_context():
        note_id = db.session.scalar(sa.select(Note.id))
    answer = {**_csrf(bo, f"/notes/{note_id}"), "choice": "yes"}
    tab = _twin(app, bo)
    first, second = run_together(
        lambda: bo.post(f"/notes/{note_id}/answer", data=answer),
        lambda: tab.post(f"/notes/{note_id}/answer", data=answer),
    )
    assert first.status_code == second.status_code == 302
    assert _count(app, Note) == 1  # an answer changes its note; it never adds a row
    opened = ada.get(f"/notes/{note_id}").get_data(as_text=True)
    assert "answered: Yes, let" in html.unescape(opened)


def test_an_invite_form_posted_again_after_its_link_was_withdrawn_makes_a_new_link(app, people):
    ada = people["ada"]
    form = _form_fields(ada.get("/pair/").get_data(as_text=True))
    first = ada.post("/pair/invite", data=form).get_data(as_text=True)
    assert post_form(ada, "/pair/invite/revoke", {}, token_from="/pair/").status_code == 302
    again = ada.post("/pair/invite", data=form)  # the browser's back button, then the button
    assert again.status_code == 200
    links = [
        re.search(r"/pair/join/[\w-]+", page).group(0)
        for page in (first, again.get_data(as_text=True))
    ]
    assert links[0] != links[1]
    assert _count(app, Invite, Invite.revoked_at.is_(None)) == 1
