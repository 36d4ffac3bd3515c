"""The practices as services: the table, places in turns, agreements, their texts and news."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from wishnotes import agreements, i18n, places, practice_texts, prompts, rituals, together
from wishnotes.errors import (
    AgreementSettled,
    InvalidInput,
    NotPaired,
    NotYourTurn,
    PlaceEnded,
    PlaceOpen,
    PracticeNotFound,
)
from wishnotes.extensions import db
from wishnotes.models import PlaceTurn
from wishnotes.web.program import PRACTICE_ENDPOINTS

from .conftest import now
from .test_notes import Person, make_person, pair


@pytest.fixture
def people(app_ctx) -> dict[str, Person]:
    """Ada and Bo are a pair, Cy and Dee another."""
    folks = {name: make_person(app_ctx, name) for name in ("ada", "bo", "cy", "dee")}
    pair(folks["ada"], folks["bo"])
    pair(folks["cy"], folks["dee"])
    return folks


def test_the_table_is_ordered_by_newest_activity_and_keeps_done_dates_as_history(people):
    ada, bo = people["ada"], people["bo"]
    start = now()
    tea = rituals.add_item(user=ada.user, user_key=ada.key, text="I miss tea", now=start)
    walk = rituals.add_item(
        user=bo.user, user_key=bo.key, text="I miss walks", now=start + timedelta(seconds=5)
    )
    texts = [o.text for o in rituals.table(user=ada.user, user_key=ada.key, now=now())]
    assert texts == ["I miss walks", "I miss tea"]
    today = start.date()
    for day in (today - timedelta(days=30), today - timedelta(days=2), today - timedelta(days=2)):
        rituals.mark_done(user=bo.user, item_id=tea.id, day=day, now=start + timedelta(minutes=1))
    opened = rituals.table(user=ada.user, user_key=ada.key, now=now())
    assert [o.text for o in opened] == ["I miss tea", "I miss walks"]
    assert opened[0].done_on == [today - timedelta(days=30), today - timedelta(days=2)]
    assert opened[0].mine and not opened[1].mine and opened[1].author.id == bo.id
    with pytest.raises(InvalidInput):
        rituals.mark_done(user=bo.user, item_id=walk.id, day=today + timedelta(days=2), now=now())


def test_only_the_other_partner_can_say_lets_bring_it_back(people):
    ada, bo = people["ada"], people["bo"]
    item = rituals.add_item(user=ada.user, user_key=ada.key, text="I miss tea", now=now())
    with pytest.raises(PracticeNotFound):
        rituals.welcome(user=ada.user, item_id=item.id, now=now())
    assert rituals.welcome(user=bo.user, item_id=item.id, now=now()).welcomed_at is not None


def test_a_planned_day_clears_once_it_is_done_and_archive_restores(people):
    ada = people["ada"]
    item = rituals.add_item(user=ada.user, user_key=ada.key, text="I miss tea", now=now())
    day = now().date()
    rituals.plan(user=ada.user, item_id=item.id, day=day, now=now())
    rituals.mark_done(user=ada.user, item_id=item.id, day=day, now=now())
    assert item.planned_on is None
    rituals.archive(user=ada.user, item_id=item.id, now=now())
    assert rituals.table(user=ada.user, user_key=ada.key, now=now()) == []
    assert len(rituals.table(user=ada.user, user_key=ada.key, now=now(), archived=True)) == 1
    rituals.archive(user=ada.user, item_id=item.id, now=now(), restore=True)
    assert len(rituals.table(user=ada.user, user_key=ada.key, now=now())) == 1


@pytest.mark.parametrize("text", ["", "   ", "x" * 301, "I miss \x07 bells"])
def test_an_empty_long_or_unshowable_item_is_refused(people, text):
    ada = people["ada"]
    with pytest.raises(InvalidInput):
        rituals.add_item(user=ada.user, user_key=ada.key, text=text, now=now())


def test_places_go_in_turns_starting_with_who_started(people):
    ada, bo = people["ada"], people["bo"]
    place = places.start_place(user=bo.user, user_key=bo.key, name=None, now=now())
    with pytest.raises(PlaceOpen):
        places.start_place(user=ada.user, user_key=ada.key, name="Another", now=now())
    with pytest.raises(NotYourTurn):
        places.add_turn(user=ada.user, user_key=ada.key, place_id=place.id, text="I", now=now())
    places.add_turn(user=bo.user, user_key=bo.key, place_id=place.id, text="A shore", now=now())
    with pytest.raises(NotYourTurn):
        places.add_turn(user=bo.user, user_key=bo.key, place_id=place.id, text="Again", now=now())
    places.add_turn(user=ada.user, user_key=ada.key, place_id=place.id, text="Foam", now=now())
    opened = places.current(user=bo.user, user_key=bo.key, now=now())
    assert [t.text for t in opened.turns] == ["A shore", "Foam"]
    assert opened.my_turn and len(opened.starters) == 3
    assert set(opened.starters) <= set(practice_texts.shipped().place_starters)
    # The same turn offers the same three starters on every visit.
    assert places.current(user=bo.user, user_key=bo.key, now=now()).starters == opened.starters
    assert places.current(user=ada.user, user_key=ada.key, now=now()).starters == ()
    with pytest.raises(InvalidInput):
        places.add_turn(user=bo.user, user_key=bo.key, place_id=place.id, text="y" * 601, now=now())


def test_an_ended_place_stays_readable_takes_no_turns_and_a_new_one_can_begin(people):
    ada, bo = people["ada"], people["bo"]
    place = places.start_place(user=ada.user, user_key=ada.key, name="The cove", now=now())
    places.add_turn(user=ada.user, user_key=ada.key, place_id=place.id, text="Sand", now=now())
    places.end_place(user=bo.user, place_id=place.id, now=now())
    with pytest.raises(PlaceEnded):
        places.add_turn(user=bo.user, user_key=bo.key, place_id=place.id, text="Late", now=now())
    assert places.current(user=ada.user, user_key=ada.key, now=now()) is None
    old = places.open_place(user=bo.user, user_key=bo.key, place_id=place.id, now=now())
    assert old.name == "The cove" and [t.text for t in old.turns] == ["Sand"]
    assert old.next_writer is None
    places.start_place(user=bo.user, user_key=bo.key, name=None, now=now())
    assert [p.id for p in places.ended(user=ada.user)] == [place.id]


def test_two_turns_racing_for_the_same_slot_keep_the_first(people, monkeypatch):
    ada, bo = people["ada"], people["bo"]
    place = places.start_place(user=ada.user, user_key=ada.key, name=None, now=now())
    first = places.add_turn(user=ada.user, user_key=ada.key, place_id=place.id, text="1", now=now())
    # Bo's turn lands in slot 2 while a second request of his still sees only turn 1.
    places.add_turn(user=bo.user, user_key=bo.key, place_id=place.id, text="Mine", now=now())
    monkeypatch.setattr(places, "_last_turn", lambda place_id: first)
    with pytest.raises(NotYourTurn):
        places.add_turn(user=bo.user, user_key=bo.key, place_id=place.id, text="Twice", now=now())
    monkeypatch.undo()
    opened = places.current(user=ada.user, user_key=ada.key, now=now())
    assert [t.text for t in opened.turns] == ["1", "Mine"] and opened.my_turn
    assert len(db.session.scalars(select(PlaceTurn)).all()) == 2


def test_an_agreement_is_proposed_then_accepted_by_the_other_and_ended_by_either(people):
    ada, bo = people["ada"], people["bo"]
    today = now().date()
    shipped = agreements.shipped()[0]
    made = agreements.propose(
        user=ada.user,
        user_key=ada.key,
        shipped_key=shipped.key,
        starts_on=today + timedelta(days=1),
        ends_on=today + timedelta(days=7),
        now=now(),
    )
    [seen] = agreements.listing(user=bo.user, user_key=bo.key, now=now())
    assert seen.state == agreements.PROPOSED and seen.can_accept
    assert seen.title == shipped.title and seen.text == shipped.text
    with pytest.raises(PracticeNotFound):
        agreements.accept(user=ada.user, agreement_id=made.id, now=now())
    agreements.accept(user=bo.user, agreement_id=made.id, now=now())
    with pytest.raises(AgreementSettled):
        agreements.accept(user=bo.user, agreement_id=made.id, now=now())
    assert agreements.state_of(made, today=today) == agreements.AGREED
    assert agreements.state_of(made, today=today + timedelta(days=1)) == agreements.IN_EFFECT
    assert agreements.state_of(made, today=today + timedelta(days=8)) == agreements.COMPLETE
    agreements.end(user=bo.user, agreement_id=made.id, now=now())
    for person in (ada, bo):
        [after] = agreements.listing(user=person.user, user_key=person.key, now=now())
        assert after.state == agreements.ENDED


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"shipped_key": "no-such-thing"}, "shipped"),
        ({"text": ""}, "text"),
        ({"text": "ok", "starts_on": -3}, "starts_on"),
        ({"text": "ok", "ends_on": -1}, "ends_on"),
        ({"text": "ok", "ends_on": 400}, "ends_on"),
    ],
)
def test_a_proposal_with_bad_words_or_days_is_refused_with_the_field_named(people, kwargs, field):
    ada = people["ada"]
    today = now().date()
    args = {"starts_on": today, **kwargs}
    for name in ("starts_on", "ends_on"):
        if isinstance(args.get(name), int):
            args[name] = today + timedelta(days=args[name])
    with pytest.raises(InvalidInput) as raised:
        agreements.propose(user=ada.user, user_key=ada.key, now=now(), **args)
    assert raised.value.field == field


def test_nothing_is_reachable_once_unpaired(app_ctx):
    alone = make_person(app_ctx, "eve")
    with pytest.raises(NotPaired):
        rituals.add_item(user=alone.user, user_key=alone.key, text="I miss", now=now())
    with pytest.raises(PracticeNotFound):
        agreements.end(user=alone.user, agreement_id="0" * 32, now=now())
    assert places.current(user=alone.user, user_key=alone.key, now=now()) is None


def test_news_names_what_the_partner_did_until_the_user_has_looked(people):
    ada, bo = people["ada"], people["bo"]
    assert together.news(user=bo.user, partner=ada.user) == []
    rituals.add_item(user=ada.user, user_key=ada.key, text="I miss tea", now=now())
    agreements.propose(
        user=ada.user, user_key=ada.key, text="Tea at five", starts_on=now().date(), now=now()
    )
    messages = [n.message for n in together.news(user=bo.user, partner=ada.user)]
    assert messages == ["Ada added something to your table", "Ada proposed an agreement"]
    assert together.news(user=ada.user, partner=bo.user) == []  # her own doings are not news
    together.mark_seen(user=bo.user, practice=together.RITUALS, now=now())
    practices = [n.practice for n in together.news(user=bo.user, partner=ada.user)]
    assert practices == [together.AGREEMENTS]
    assert together.users_with_news({bo.id: bo.user.pair_id, ada.id: ada.user.pair_id}) == {bo.id}


# --- the shipped texts ----------------------------------------------------------------------


def test_shipped_practice_texts_load_for_every_language():
    for path in sorted(practice_texts.DATA_DIR.glob("*.toml")):
        texts = practice_texts.load_texts(path)
        assert len(texts.place_starters) >= practice_texts.MIN_STARTERS
        assert {"closeness-without-sex", "evening-listening"} <= {a.key for a in texts.agreements}


def test_every_language_has_exactly_the_english_agreement_keys():
    assert {"en", "ru"} <= set(practice_texts.available_languages())
    english = [a.key for a in practice_texts.shipped("en").agreements]
    for texts in practice_texts.every_language():
        assert [a.key for a in texts.agreements] == english, texts.language
        assert len(texts.place_starters) >= practice_texts.MIN_STARTERS


def test_the_texts_follow_the_language_in_effect_and_fall_back_to_english(app, monkeypatch):
    assert practice_texts.shipped().language == "en"  # outside any app or request
    with app.app_context():
        assert practice_texts.shipped().language == "en"
        with i18n.in_language("ru"):
            ru = practice_texts.shipped()
            assert ru.language == "ru" and "Я вижу…" in ru.place_starters
            assert ru.agreement("evening-listening").title == "Время выслушать друг друга"
            assert practice_texts.shipped("en").language == "en"  # asked for by name
    with app.test_request_context(headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}):
        assert practice_texts.shipped().language == "ru"
    with app.test_request_context(headers={"Accept-Language": "de"}):
        assert practice_texts.shipped().language == "en"
    for unknown in ("de", "xx-YY", "../en", "", 7):
        assert practice_texts.shipped(unknown).language == "en"
    assert practice_texts.shipped("ru_RU") is practice_texts.shipped("ru")
    # A language of the interface without practice texts of its own reads them in English.
    monkeypatch.setattr(i18n, "current", lambda: "de")
    with app.app_context():
        assert practice_texts.shipped().language == "en"


def test_place_starters_come_in_the_viewers_language(people):
    ada, bo = people["ada"], people["bo"]
    place = places.start_place(user=ada.user, user_key=ada.key, name=None, now=now())
    with i18n.in_language("ru"):
        offered = places.current(user=ada.user, user_key=ada.key, now=now()).starters
    assert len(offered) == 3 and set(offered) <= set(practice_texts.shipped("ru").place_starters)
    places.add_turn(user=ada.user, user_key=ada.key, place_id=place.id, text="The sea", now=now())
    with i18n.in_language("en"):
        offered = places.current(user=bo.user, user_key=bo.key, now=now()).starters
    assert set(offered) <= set(practice_texts.shipped("en").place_starters)


def test_a_shipped_agreement_reads_in_each_viewers_language(people):
    ada, bo = people["ada"], people["bo"]
    en = practice_texts.shipped("en").agreement("pause-word")
    ru = practice_texts.shipped("ru").agreement("pause-word")
    with i18n.in_language("en"):
        agreements.propose(
            user=ada.user,
            user_key=ada.key,
            shipped_key="pause-word",
            starts_on=now().date(),
            now=now(),
        )
    with i18n.in_language("ru"):
        [seen] = agreements.listing(user=bo.user, user_key=bo.key, now=now())
    assert (seen.title, seen.text) == (ru.title, ru.text) and seen.can_accept
    with i18n.in_language("en"):
        [mine] = agreements.listing(user=ada.user, user_key=ada.key, now=now())
    assert (mine.title, mine.text) == (en.title, en.text)


def test_own_words_under_a_shipped_title_keep_the_words(people):
    ada, bo = people["ada"], people["bo"]
    words = "Dinner without phones, but on Fridays with music."
    with i18n.in_language("ru"):
        agreements.propose(
            user=ada.user,
            user_key=ada.key,
            shipped_key="phones-away",
            text=words,
            starts_on=now().date(),
            now=now(),
        )
    with i18n.in_language("en"):
        [seen] = agreements.listing(user=bo.user, user_key=bo.key, now=now())
    assert seen.title == practice_texts.shipped("en").agreement("phones-away").title
    assert seen.text == words
    with i18n.in_language("ru"):
        [own] = agreements.listing(user=ada.user, user_key=ada.key, now=now())
    ru = practice_texts.shipped("ru").agreement("phones-away")
    assert (own.title, own.text) == (ru.title, words)


def test_an_agreement_sealed_without_its_key_is_recognised_by_its_title(app_ctx):
    en = practice_texts.shipped("en").agreement("one-evening-a-week")
    ru = practice_texts.shipped("ru").agreement("one-evening-a-week")
    with i18n.in_language("ru"):
        shown = agreements._in_viewers_language(key=None, title=en.title, text=en.text)
        assert shown == (ru.title, ru.text)
        unknown = agreements._in_viewers_language(key=None, title="Something", text="Ours")
        assert unknown == ("Something", "Ours")
        retired = agreements._in_viewers_language(key="gone", title=en.title, text=en.text)
        assert retired == (en.title, en.text)
        assert agreements._in_viewers_language(key=None, title=None, text="Ours") == (None, "Ours")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('starters = ["I see…"]', "at least 6"),
        ('"I see…",\n  "I see…",', "repeats"),
        ('"I see…",', '"I see...",'),
        ('key = "phones-away"', 'key = "evening-listening"'),
        ("format = 1", "format = 2"),
        ('title = "Phones away at dinner"', 'titel = "Phones away at dinner"'),
    ],
    ids=["too-few", "repeat", "three-dots", "duplicate-key", "format", "unknown-field"],
)
def test_a_broken_practice_text_file_is_refused_naming_the_problem(tmp_path, change, message):
    source = (practice_texts.DATA_DIR / "en.toml").read_text("utf-8")
    old, new = (change, None) if message in ("at least 6", "repeats") else (change, message)
    if message == "at least 6":
        start = source.index("starters = [")
        end = source.index("]", start) + 1
        broken = source[:start] + old + source[end:]
    elif message == "repeats":
        broken = source.replace('"I see…",', old, 1)
    else:
        assert old in source
        broken = source.replace(old, new, 1)
    path = Path(tmp_path) / "en.toml"
    path.write_text(broken, "utf-8")
    with pytest.raises(practice_texts.PracticeTextsError) as raised:
        practice_texts.load_texts(path)
    assert str(raised.value).startswith("en.toml: ")


def test_the_week_points_prompts_at_the_practices():
    library = prompts.shipped()
    assert library.prompt("rituals-1").practice == "table"
    assert library.prompt("rituals-1").starters[0] == "I miss…"
    assert library.prompt("place-1").practice == "place"
    assert library.prompt("wishes-1").practice is None
    used = {p.practice for w in library.weeks for p in w.prompts} - {None}
    assert used <= set(prompts.PRACTICES) == set(PRACTICE_ENDPOINTS)
