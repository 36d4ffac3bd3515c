"""Mutual wishes: the deck, matching, the delay and limit on changes, and what the server holds."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from wishnotes import cards, crypto, pairing, wishes
from wishnotes.errors import CardNotFound, NotPaired, TooManyChanges
from wishnotes.extensions import db
from wishnotes.models import WishDeck, WishKey

from .conftest import csrf_token, login, now, post_form
from .test_notes import make_person, pair

CARD = "time-slow-breakfast"
OTHER = "rituals-evening-tea"
CLOSER = "closer-slow-evening"


@pytest.fixture
def people(app_ctx):
    """Ada and Bo are a pair, Cy and Dee another."""
    folks = {name: make_person(app_ctx, name) for name in ("ada", "bo", "cy", "dee")}
    pair(folks["ada"], folks["bo"])
    pair(folks["cy"], folks["dee"])
    return folks


def say(person, card, choice, at=None):
    return wishes.answer(
        user=person.user, user_key=person.key, card_key=card, choice=choice, now=at or now()
    )


def found(person, at=None) -> dict[str, str]:
    got = wishes.matches(user=person.user, user_key=person.key, now=at or now())
    return {c.key: "shared" for c in got.shared} | {c.key: "talk" for c in got.talk}


# --- the deck ---------------------------------------------------------------------------------


def test_the_shipped_deck_has_at_least_120_cards_in_themes_with_one_intimate():
    deck = cards.deck("en")
    assert len(deck.keys) >= 120 and len(set(deck.keys)) == len(deck.keys)
    assert [t.key for t in deck.themes if t.intimate] == ["closer"]
    assert len(deck.cards(intimate=False)) < len(deck.cards(intimate=True))
    assert {"touch-hand-on-hand", "touch-less-for-now"} <= set(deck.keys)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda t: t.replace('key = "time-walk-no-goal"', 'key = "time-slow-breakfast"'), "twice"),
        (lambda t: t.replace('language = "en"', 'language = "de"'), "file name"),
        (lambda t: t.replace('key = "time-walk-no-goal"', 'key = "walk-no-goal"'), "theme"),
        (lambda t: t.replace("format = 1", "format = 2"), "format"),
        (lambda t: t.replace('text = "A shower together"', 'text = " "'), "non-empty"),
        (lambda t: t + '\n[[themes]]\nkey = "x"\ntitle = "X"\nintimate = true\n'
         '[[themes.cards]]\nkey = "x-y"\ntext = "Y"\n', "intimate"),
    ],
)  # fmt: skip
def test_a_broken_card_file_is_refused_with_a_clear_message(tmp_path, change, error):
    text = (cards.DATA_DIR / "en.toml").read_text(encoding="utf-8")
    broken = tmp_path / "en.toml"
    broken.write_text(change(text), encoding="utf-8")
    with pytest.raises(cards.DeckError, match=error):
        cards.load_deck(broken)


# --- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ada_says", "bo_says", "shown"),
    [
        ("yes", "yes", "shared"),
        ("yes", "maybe", "talk"),
        ("maybe", "yes", "talk"),
        ("maybe", "maybe", None),
        ("yes", "no", None),
        ("no", "yes", None),
        ("maybe", "no", None),
        ("no", "no", None),
        ("yes", None, None),
        (None, "maybe", None),
    ],
)
def test_only_what_both_want_is_shown_to_both(people, ada_says, bo_says, shown):
    ada, bo = people["ada"], people["bo"]
    for person, choice in ((ada, ada_says), (bo, bo_says)):
        if choice:
            say(person, CARD, choice)
        else:
            wishes.open_deck(user=person.user, user_key=person.key, now=now())
    expected = {CARD: shown} if shown else {}
    assert found(ada) == expected
    assert found(bo) == expected


def test_a_reveal_marks_only_what_matched_since_the_last_one(people):
    ada, bo = people["ada"], people["bo"]
    say(ada, CARD, "yes"), say(bo, CARD, "yes")
    first = wishes.matches(user=ada.user, user_key=ada.key, now=now())
    assert first.new == {CARD}
    say(ada, OTHER, "yes"), say(bo, OTHER, "maybe")
    second = wishes.matches(user=ada.user, user_key=ada.key, now=now())
    assert second.new == {OTHER}
    assert {c.key for c in second.shared} == {CARD} and {c.key for c in second.talk} == {OTHER}


def test_another_pair_sees_nothing_of_these_answers(people):
    ada, bo, cy, dee = (people[n] for n in ("ada", "bo", "cy", "dee"))
    say(ada, CARD, "yes"), say(bo, CARD, "yes")
    say(cy, OTHER, "yes"), say(dee, OTHER, "yes")
    assert found(cy) == {OTHER: "shared"} and found(ada) == {CARD: "shared"}


def test_someone_without_a_partner_has_no_deck(app_ctx):
    alone = make_person(app_ctx, "solo")
    with pytest.raises(NotPaired):
        wishes.open_deck(user=alone.user, user_key=alone.key, now=now())


# --- anti-probing -----------------------------------------------------------------------------


def test_a_changed_answer_counts_only_after_a_day(people):
    ada, bo = people["ada"], people["bo"]
    t0 = now()
    say(ada, CARD, "yes", t0), say(bo, CARD, "yes", t0)
    assert found(ada, t0) == {CARD: "shared"}
    deck = say(bo, CARD, "no", t0 + timedelta(minutes=1))
    assert deck.answers[CARD] == "no" and CARD in deck.waiting
    assert found(ada, t0 + timedelta(hours=23)) == {CARD: "shared"}  # the old answer still counts
    assert found(ada, t0 + timedelta(hours=25)) == {}
    say(bo, CARD, "yes", t0 + timedelta(hours=26))  # toggling back is delayed just the same
    assert found(ada, t0 + timedelta(hours=27)) == {}
    assert found(ada, t0 + timedelta(hours=51)) == {CARD: "shared"}


def test_a_first_answer_counts_at_once(people):
    ada, bo = people["ada"], people["bo"]
    say(ada, CARD, "yes")
    say(bo, CARD, "yes")
    assert found(bo) == {CARD: "shared"}


def test_only_a_few_changes_are_allowed_in_a_week(people):
    ada = people["ada"]
    t0 = now()
    keys = cards.deck().keys[:7]
    for key in keys:
        say(ada, key, "yes", t0)
    for key in keys[: wishes.CHANGES_PER_WEEK]:
        say(ada, key, "maybe", t0 + timedelta(minutes=1))
    with pytest.raises(TooManyChanges):
        say(ada, keys[-1], "no", t0 + timedelta(minutes=2))
    say(ada, keys[-1], "no", t0 + timedelta(days=7, minutes=2))  # a week later it is fine


# --- the intimate theme -----------------------------------------------------------------------


def test_the_closer_cards_show_only_when_both_turned_them_on(people):
    ada, bo = people["ada"], people["bo"]
    wishes.set_intimate(user=ada.user, user_key=ada.key, on=True, now=now())
    deck = wishes.open_deck(user=ada.user, user_key=ada.key, now=now())
    assert not deck.intimate_both and CLOSER not in {c.key for c in deck.cards}
    with pytest.raises(CardNotFound):
        say(ada, CLOSER, "yes")
    wishes.set_intimate(user=bo.user, user_key=bo.key, on=True, now=now())
    say(ada, CLOSER, "yes"), say(bo, CLOSER, "yes")
    assert found(ada) == {CLOSER: "shared"}
    wishes.set_intimate(user=bo.user, user_key=bo.key, on=False, now=now())
    assert found(ada) == {}  # either one turning it off hides them again


# --- what the server holds --------------------------------------------------------------------


def test_the_rows_do_not_tell_a_yes_from_a_not_for_me(people, app_ctx):
    """Two people, one answering every card "yes", one "not for me": their rows look alike.

    The server has the rows and every server secret, but not the pair secret (sealed to the
    partners' keys), so each row is the same number of random-looking tags in sorted order and a
    state blob of the same size; no card key or answer word is stored.
    """
    ada, cy = people["ada"], people["cy"]
    everything = cards.deck().cards(intimate=False)
    for card in everything:
        say(ada, card.key, "yes")
        say(cy, card.key, "no")
    rows = {row.user_id: row for row in db.session.scalars(select(WishDeck))}
    yes_row, no_row = rows[ada.id], rows[cy.id]
    tag_count = 2 * len(cards.deck().keys)
    for row in (yes_row, no_row):
        assert len(row.tags) == tag_count * crypto.WISH_TAG_BYTES
        chunks = [row.tags[i : i + 16] for i in range(0, len(row.tags), 16)]
        assert chunks == sorted(chunks) and len(set(chunks)) == tag_count
    assert len(yes_row.state) == len(no_row.state)
    raw = b"".join(
        bytes(v) for row in rows.values() for v in (row.state, row.tags, row.next_tags or b"")
    )
    for secret in (app_ctx.config["SECRET_KEY"], app_ctx.config["PEPPER"]):
        key = crypto.wish_tag_key(secret.encode()[:32], pair_id=ada.user.pair_id)
        guess = crypto.wish_tags(key, card=everything[0].key, answer="yes", role=0)
        assert guess[0] not in raw  # server secrets do not make the tags
    for word in (everything[0].key, "maybe", '"yes"', "not for me"):
        assert word.encode() not in raw


def test_the_pair_secret_is_sealed_to_both_and_a_forged_one_is_refused(people):
    ada, bo = people["ada"], people["bo"]
    say(ada, CARD, "yes")
    row = db.session.get(WishKey, ada.user.pair_id)
    assert {row.sender_id, row.recipient_id} == {ada.id, bo.id}
    forged = bytearray(row.envelope)
    forged[-1] ^= 1
    row.envelope = bytes(forged)
    db.session.commit()
    from wishnotes.errors import DecryptionFailed

    with pytest.raises(DecryptionFailed):
        wishes.open_deck(user=bo.user, user_key=bo.key, now=now())


def test_unpairing_deletes_the_answers_and_the_pair_secret(people, app_ctx):
    ada, bo = people["ada"], people["bo"]
    say(ada, CARD, "yes"), say(bo, CARD, "yes")
    pair_id = ada.user.pair_id
    pairing.unpair(user=bo.user, now=now())
    assert db.session.scalars(select(WishDeck).where(WishDeck.pair_id == pair_id)).all() == []
    assert db.session.get(WishKey, pair_id) is None
    # A former partner who pairs again starts from nothing.
    eve = make_person(app_ctx, "eve")
    pair(bo, eve)
    say(eve, CARD, "yes")
    assert found(bo) == {} and found(eve) == {}


# --- through the web --------------------------------------------------------------------------


def _signed_in(app, email="ada@example.com"):
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def test_a_person_answers_cards_one_at_a_time_through_plain_forms(app, people):
    client = _signed_in(app)
    page = client.get("/wishes/").get_data(as_text=True)
    assert "Start with the first card" in page
    first = cards.deck().keys[0]
    card_page = client.get(f"/wishes/cards/{first}").get_data(as_text=True)
    assert card_page.count('aria-pressed="false"') == 3 and "Skip this card" in card_page
    answered = post_form(client, f"/wishes/cards/{first}", {"choice": "maybe"})
    assert answered.status_code == 302
    assert answered.headers["Location"].endswith(f"/wishes/cards/{cards.deck().keys[1]}")
    again = client.get(f"/wishes/cards/{first}").get_data(as_text=True)
    assert 'value="maybe" class="secondary" aria-pressed="true"' in again
    listing = client.get("/wishes/cards").get_data(as_text=True)
    assert "Your answer: Maybe" in listing and listing.count("Your answer") == 1


def test_the_wish_pages_refuse_bad_input_calmly(app, people):
    client = _signed_in(app)
    assert client.get("/wishes/cards/no-such-card").status_code == 404
    assert client.get(f"/wishes/cards/{CLOSER}").status_code == 404  # not turned on by both
    token = csrf_token(client, "/wishes/")
    bad = client.post(f"/wishes/cards/{CARD}", data={"choice": "perhaps", "csrf_token": token})
    assert bad.status_code == 302
    assert "Please choose one of the answers" in client.get(bad.headers["Location"]).get_data(
        as_text=True
    )
    assert client.post(f"/wishes/cards/{CARD}", data={"choice": "yes"}).status_code == 400


def test_someone_not_paired_is_sent_to_pair_first(app):
    from .conftest import register_user

    register_user(app, "solo@example.com", "Solo")
    client = _signed_in(app, "solo@example.com")
    answer = client.get("/wishes/")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/pair/")


def test_a_shared_wish_offers_to_write_a_note_about_it(app, people):
    ada, bo = people["ada"], people["bo"]
    say(ada, CARD, "yes"), say(bo, CARD, "yes")
    client = _signed_in(app)
    page = client.get("/wishes/both").get_data(as_text=True)
    card = cards.deck().card(CARD)
    assert card.text in page and "Shared wishes" in page and 'class="note-body"' in page
    compose = client.get(f"/notes/new?wish={CARD}").get_data(as_text=True)
    assert f"{card.text}. " in compose
    assert f"/together/table/?wish={CARD}" in page
    table = client.get(f"/together/table/?wish={CARD}").get_data(as_text=True)
    assert "I miss a slow breakfast on a free morning" in table


def test_answers_never_reach_the_database_file_in_clear(app, people, tmp_path):
    ada, bo = people["ada"], people["bo"]
    for key in cards.deck().keys[:30]:
        say(ada, key, "yes"), say(bo, key, "no")
    wishes.matches(user=ada.user, user_key=ada.key, now=now())
    raw = b"".join(  # every value of every row, on either database
        str(value).encode() if not isinstance(value, bytes) else value
        for table in db.metadata.sorted_tables
        for row in db.session.execute(table.select())
        for value in row
    )
    db.session.remove()
    database = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    raw += b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    for key in cards.deck().keys[:30]:
        for form in (key.encode(), base64.b64encode(key.encode()), key.encode().hex().encode()):
            assert form not in raw
