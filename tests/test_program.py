"""The pair's week: days in the week's time zone, pause and resume, finishing, past weeks."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from wishnotes import program, prompts
from wishnotes.errors import (
    InvalidInput,
    NothingToAccept,
    NotPaired,
    NoWeek,
    WeekAlreadyPaused,
    WeekInProgress,
)
from wishnotes.extensions import db
from wishnotes.models import Pair, User

from .conftest import login, pair_users, post_form, register_user

MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def couple(app):
    ada, _ = register_user(app, "ada@example.com", "Ada")
    bo, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada, bo)
    return ada, bo


def _users(ada_id, bo_id):
    return db.session.get(User, ada_id), db.session.get(User, bo_id)


def _start(user, *, start=date(2026, 3, 2), zone="Europe/Berlin", theme="wishes", now=None):
    """Propose a week as `user`; the partner accepts it at once."""
    week = program.start_week(
        user=user, theme_key=theme, start_date=start, timezone=zone, now=now or MONDAY_NOON
    )
    partner = db.session.scalar(
        select(User).where(User.pair_id == user.pair_id, User.id != user.id)
    )
    program.accept_week(user=partner, now=now or MONDAY_NOON)
    return week


def test_the_day_follows_the_calendar_of_the_weeks_time_zone(app_ctx, couple):
    ada, _ = _users(*couple)
    week = _start(ada, zone="Europe/Berlin")
    pair = db.session.get(Pair, ada.pair_id)
    assert program.todays_prompt(pair=pair, now=MONDAY_NOON).key == "wishes-1"
    # 23:30 UTC on Monday is already Tuesday 00:30 in Berlin: day 2 there.
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    assert program.status_of(week, now=late).day == 2
    assert program.todays_prompt(pair=pair, now=late).key == "wishes-2"
    week.timezone = "America/New_York"  # still Monday evening in New York
    assert program.status_of(week, now=late).prompt.key == "wishes-1"


def test_a_week_is_upcoming_before_its_first_day_and_complete_after_the_seventh(app_ctx, couple):
    ada, _ = _users(*couple)
    week = _start(ada, start=date(2026, 3, 4), zone="UTC")
    before = program.status_of(week, now=MONDAY_NOON)
    assert (before.state, before.prompt) == (program.UPCOMING, None)
    seventh = program.status_of(week, now=datetime(2026, 3, 10, 23, 59, tzinfo=UTC))
    assert (seventh.state, seventh.day, seventh.prompt.key) == (program.ACTIVE, 7, "wishes-7")
    after = program.status_of(week, now=datetime(2026, 3, 11, 0, 0, tzinfo=UTC))
    assert (after.state, after.prompt) == (program.COMPLETE, None)


def test_a_pause_freezes_the_day_and_resuming_goes_on_where_it_stopped(app_ctx, couple):
    ada, _ = _users(*couple)
    _start(ada, zone="UTC")
    pair = db.session.get(Pair, ada.pair_id)
    day3 = MONDAY_NOON + timedelta(days=2)
    program.pause_week(user=ada, now=day3)
    later = day3 + timedelta(days=4)
    paused = program.status(pair=pair, now=later)
    assert (paused.state, paused.day, paused.prompt) == (program.PAUSED, 3, None)
    assert program.todays_prompt(pair=pair, now=later) is None
    program.resume_week(user=ada, now=later)
    resumed = program.status(pair=pair, now=later)
    assert (resumed.state, resumed.day, resumed.prompt.key) == (program.ACTIVE, 3, "wishes-3")
    assert resumed.week.start_date == date(2026, 3, 6)


def test_either_partner_can_resume_a_week_the_other_paused(app_ctx, couple):
    ada, bo = _users(*couple)
    _start(ada, zone="UTC")
    program.pause_week(user=bo, now=MONDAY_NOON)
    with pytest.raises(WeekAlreadyPaused):
        program.pause_week(user=ada, now=MONDAY_NOON)
    current = program.status(pair=db.session.get(Pair, ada.pair_id), now=MONDAY_NOON)
    assert not current.paused_by(ada) and current.paused_by(bo)
    program.resume_week(user=ada, now=MONDAY_NOON)
    assert program.status(pair=ada.pair, now=MONDAY_NOON).state == program.ACTIVE
    program.pause_week(user=ada, now=MONDAY_NOON)
    program.finish_week(user=bo, now=MONDAY_NOON)
    assert program.current_week(pair=ada.pair) is None


def test_a_proposed_week_waits_for_the_partner_who_accepts_it(app_ctx, couple):
    ada, bo = _users(*couple)
    week = program.start_week(
        user=ada, theme_key="wishes", start_date=date(2026, 3, 2), timezone="UTC", now=MONDAY_NOON
    )
    waiting = program.status_of(week, now=MONDAY_NOON)
    assert (waiting.state, waiting.prompt) == (program.WAITING, None)
    assert waiting.waits_for(bo) and not waiting.waits_for(ada)
    with pytest.raises(NothingToAccept):
        program.accept_week(user=ada, now=MONDAY_NOON)
    # Sam takes two days to say yes: day 1 is the day both agreed, not a day already gone.
    two_days_later = MONDAY_NOON + timedelta(days=2)
    program.accept_week(user=bo, now=two_days_later)
    running = program.status_of(week, now=two_days_later)
    assert (running.state, running.day, running.prompt.key) == (program.ACTIVE, 1, "wishes-1")
    with pytest.raises(NothingToAccept):
        program.accept_week(user=bo, now=two_days_later)


def test_a_proposal_can_be_withdrawn_or_declined_and_leaves_no_past_week(app_ctx, couple):
    ada, bo = _users(*couple)
    program.start_week(
        user=ada, theme_key="wishes", start_date=date(2026, 3, 2), timezone="UTC", now=MONDAY_NOON
    )
    program.finish_week(user=bo, now=MONDAY_NOON)
    assert program.current_week(pair=ada.pair) is None
    assert program.past_weeks(pair=ada.pair) == []


def test_a_running_week_blocks_a_new_one_and_a_complete_week_gives_way_to_the_next_theme(
    app_ctx, couple
):
    ada, bo = _users(*couple)
    _start(ada, zone="UTC")
    with pytest.raises(WeekInProgress):
        _start(bo, zone="UTC", theme="attention")
    after = MONDAY_NOON + timedelta(days=7)
    pair = db.session.get(Pair, ada.pair_id)
    assert program.suggested_theme(pair=pair).key == "wishes"
    second = _start(bo, start=date(2026, 3, 9), zone="UTC", theme="attention", now=after)
    assert program.current_week(pair=pair).id == second.id
    assert [week.theme_key for week in program.past_weeks(pair=pair)] == ["wishes"]
    assert program.suggested_theme(pair=pair).key == prompts.shipped().next_week("wishes").key


def test_finishing_early_lists_the_week_and_offers_the_next_theme(app_ctx, couple):
    ada, _ = _users(*couple)
    _start(ada, zone="UTC")
    program.finish_week(user=ada, now=MONDAY_NOON + timedelta(hours=1))
    pair = db.session.get(Pair, ada.pair_id)
    assert program.current_week(pair=pair) is None
    assert program.suggested_theme(pair=pair).key == "attention"
    with pytest.raises(NoWeek):
        program.pause_week(user=ada, now=MONDAY_NOON)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"zone": "Mars/Olympus_Mons"}, "timezone"),
        ({"zone": "../../etc/passwd"}, "timezone"),
        ({"zone": ""}, "timezone"),
        ({"theme": "no-such-theme"}, "theme"),
        ({"start": date(2026, 2, 1)}, "start_date"),
        ({"start": date(2027, 3, 2)}, "start_date"),
    ],
)
def test_start_refuses_unknown_zones_themes_and_far_dates(app_ctx, couple, kwargs, field):
    ada, _ = _users(*couple)
    with pytest.raises(InvalidInput) as caught:
        _start(ada, **kwargs)
    assert caught.value.field == field
    assert program.current_week(pair=db.session.get(Pair, ada.pair_id)) is None


def test_a_week_needs_a_pair(app_ctx):
    user_id, _ = register_user(app_ctx, "solo@example.com", "Solo")
    with pytest.raises(NotPaired):
        _start(db.session.get(User, user_id))
    assert program.todays_prompt(pair=None, now=MONDAY_NOON) is None


@pytest.mark.parametrize(
    ("key", "index", "found"),
    [
        ("wishes-1", "0", True),
        ("wishes-1", 2, True),
        ("wishes-1", "3", False),
        ("wishes-1", "-1", False),
        ("wishes-1", "x", False),
        ("nope", "0", False),
        ("", "0", False),
        ("w" * 500, "0", False),
    ],
)
def test_find_starter_accepts_only_real_starters(key, index, found):
    result = program.find_starter(prompt_key=key, index=index)
    assert (result is not None) == found
    if found:
        assert result[1] in result[0].starters


# --- pages -----------------------------------------------------------------------------------


def test_partners_agree_to_a_week_pause_and_resume_it_through_the_pages(app, client, couple):
    app.config["NOW"] = MONDAY_NOON
    login(client, "ada@example.com")
    page = client.get("/week/").get_data(as_text=True)
    assert "Suggest this week to Bo" in page and 'value="UTC"' in page
    response = post_form(
        client,
        "/week/start",
        {"theme": "wishes", "start_date": "2026-03-02", "timezone": "UTC"},
        token_from="/week/",
    )
    assert response.status_code == 302
    page = client.get("/week/").get_data(as_text=True)
    assert "Waiting for Bo." in page and "One small wish" not in page

    other = app.test_client()
    login(other, "bo@example.com")
    page = other.get("/week/").get_data(as_text=True)
    assert "Ada would like to begin a week with you" in page
    assert "Monday, 2 March" in page
    post_form(other, "/week/accept", token_from="/week/")
    page = client.get("/week/").get_data(as_text=True)
    assert "Day 1 of 7" in page and "One small wish" in page
    # Ending the week is offered quietly on day one, never as a main button.
    assert '<button type="submit" class="link">End the week early</button>' in page

    assert post_form(client, "/week/pause", token_from="/week/").status_code == 302
    page = other.get("/week/").get_data(as_text=True)
    assert "The week is paused." in page and "One small wish" not in page
    assert "Resume the week" in page  # either partner can resume
    post_form(other, "/week/resume", token_from="/week/")
    assert "Day 1 of 7" in client.get("/week/").get_data(as_text=True)
    # At the end of a week, help beyond the app is one tap away.
    post_form(other, "/week/finish", token_from="/week/")
    assert 'href="/support"' in client.get("/week/").get_data(as_text=True)


def test_a_malformed_start_form_is_answered_with_422_and_starts_nothing(app, client, couple):
    app.config["NOW"] = MONDAY_NOON
    login(client, "ada@example.com")
    for data in (
        {"theme": "wishes", "start_date": "not-a-date", "timezone": "UTC"},
        {"theme": "wishes", "start_date": "2026-03-02", "timezone": "Nowhere/Land"},
        {"theme": "\u0000", "start_date": "2026-03-02", "timezone": "UTC"},
        {"theme": "wishes", "start_date": "2026-03-02", "timezone": "x" * 5000},
    ):
        response = post_form(client, "/week/start", data, token_from="/week/")
        assert response.status_code == 422, data
    with app.app_context():
        assert program.current_week(pair=db.session.get(User, couple[0]).pair) is None


def test_home_shows_todays_prompt_with_its_starters(app, client, couple):
    app.config["NOW"] = MONDAY_NOON
    with app.app_context():
        _start(db.session.get(User, couple[0]), zone="UTC")
    login(client, "ada@example.com")
    page = client.get("/").get_data(as_text=True)
    assert "One small wish" in page
    for starter in prompts.shipped().prompt("wishes-1").starters:
        assert starter in page
    assert "/notes/new?prompt=wishes-1&amp;starter=0" in page


def test_past_weeks_page_lists_finished_weeks(app, client, couple):
    app.config["NOW"] = MONDAY_NOON
    with app.app_context():
        ada = db.session.get(User, couple[0])
        _start(ada, zone="UTC")
        program.finish_week(user=ada, now=MONDAY_NOON)
    login(client, "bo@example.com")
    page = client.get("/week/past").get_data(as_text=True)
    assert "Writing down a wish" in page


def test_each_partner_reads_the_week_in_their_own_language(app, client, couple):
    # The week stores keys only: one partner's language never decides the other's texts.
    app.config["NOW"] = MONDAY_NOON
    en, ru = prompts.shipped("en"), prompts.shipped("ru")
    with app.app_context():
        ada, bo = _users(*couple)
        bo.language = "ru"
        db.session.commit()
        _start(ada, zone="UTC")
    login(client, "bo@example.com")
    home = client.get("/").get_data(as_text=True)
    assert ru.prompt("wishes-1").title in home and en.prompt("wishes-1").title not in home
    for starter in ru.prompt("wishes-1").starters:
        assert starter in home
    assert "/notes/new?prompt=wishes-1&amp;starter=0" in home
    week = client.get("/week/").get_data(as_text=True)
    assert ru.week("wishes").title in week and en.week("wishes").title not in week

    english = app.test_client()
    login(english, "ada@example.com")
    assert en.prompt("wishes-1").title in english.get("/").get_data(as_text=True)

    with app.app_context():
        program.finish_week(user=db.session.get(User, couple[0]), now=MONDAY_NOON)
    past = client.get("/week/past").get_data(as_text=True)
    assert ru.week("wishes").title in past


def test_program_lookups_follow_the_language_in_effect(app_ctx):
    from wishnotes import i18n

    assert program.find_prompt("heard-3").title == prompts.shipped("en").prompt("heard-3").title
    with i18n.in_language("ru"):
        assert program.find_prompt("heard-3") is prompts.shipped("ru").prompt("heard-3")
        assert program.theme_title("closeness") == prompts.shipped("ru").week("closeness").title
        assert (
            program.find_starter(prompt_key="heard-3", index="2")[1]
            == (prompts.shipped("ru").prompt("heard-3").starters[2])
        )
        assert program.suggested_theme(pair=None).title == prompts.shipped("ru").weeks[0].title
