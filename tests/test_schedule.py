"""The scheduler: who is due a weekly or daily email, by local time, across daylight saving."""

import os
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from wishnotes import accounts, outbox, preferences, program, rituals, schedule, together
from wishnotes.extensions import db
from wishnotes.models import OutboxEmail, OutboxVariant, User

from .conftest import PASSWORD, pair_users, register_user, start_agreed_week

ZONES = ("America/New_York", "Europe/Berlin", "Australia/Sydney")


def make_pair(app, first: str, second: str, **settings) -> tuple[int, int]:
    """Register and pair two users; give both the same email settings (Sunday 18:00 unless told)."""
    settings = {"weekly_weekday": 6, "weekly_hour": 18, "daily_hour": 18, **settings}
    a, _ = register_user(app, f"{first}@example.com", first.title())
    b, _ = register_user(app, f"{second}@example.com", second.title())
    pair_users(app, a, b)
    with app.app_context():
        for user_id in (a, b):
            set_emails(db.session.get(User, user_id), **settings)
    return a, b


def set_emails(user: User, **changes) -> None:
    current = preferences.settings_of(user)
    preferences.update_settings(user=user, settings=replace(current, **changes))


def hours(start: datetime, end: datetime, step=timedelta(hours=1)):
    moment = start
    while moment <= end:
        yield moment
        moment += step


def weekly_rows(user_id=None):
    query = select(OutboxEmail).where(OutboxEmail.kind == "weekly")
    if user_id is not None:
        query = query.where(OutboxEmail.user_id == user_id)
    return list(db.session.scalars(query.order_by(OutboxEmail.id)))


def first_seen(app, start, end, step=timedelta(hours=1), kind="weekly", seen=None):
    """Run a pass at each step; return {(user_id, period): the pass time that queued it}."""
    seen = {} if seen is None else seen
    with app.app_context():
        for moment in hours(start, end, step):
            schedule.queue_due(now=moment)
            rows = db.session.execute(
                select(OutboxEmail.user_id, OutboxEmail.period).where(OutboxEmail.kind == kind)
            ).all()
            for row in rows:
                seen.setdefault((row.user_id, row.period), moment)
    return seen


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "ranges",
    [
        # Spring 2026: two whole weeks around the US change (8 Mar), then the weekends of the
        # EU (29 Mar) and Sydney (5 Apr) changes, hour by hour.
        [
            (utc(2026, 3, 1), utc(2026, 3, 15)),
            (utc(2026, 3, 28), utc(2026, 3, 30, 6)),
            (utc(2026, 4, 4), utc(2026, 4, 6, 6)),
        ],
        # Autumn 2026: the Sydney weekend (4 Oct), then three whole weeks through the EU
        # (25 Oct) and US (1 Nov) changes.
        [(utc(2026, 10, 3), utc(2026, 10, 5, 6)), (utc(2026, 10, 24), utc(2026, 11, 9))],
    ],
    ids=["spring", "autumn"],
)
def test_weekly_email_is_queued_at_sunday_1800_local_in_three_zones_across_dst(app, ranges):
    users = {}
    for index, zone in enumerate(ZONES):
        a, b = make_pair(app, f"a{index}", f"b{index}", timezone=zone)
        users[a] = users[b] = zone
    seen = {}
    for start, end in ranges:
        first_seen(app, start, end, seen=seen)
    for user_id, zone in users.items():
        moments = sorted(moment for (uid, _), moment in seen.items() if uid == user_id)
        assert len(moments) == 4, (zone, moments)  # one each Sunday, none doubled or lost
        for moment in moments:
            local = moment.astimezone(ZoneInfo(zone))
            assert (local.weekday(), local.hour, local.minute) == (6, 18, 0), (zone, local)


def test_a_local_hour_skipped_by_spring_forward_is_served_with_the_next_hour(app):
    # New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    make_pair(app, "ada", "bo", timezone="America/New_York", weekly_hour=2)
    seen = first_seen(
        app, datetime(2026, 3, 8, 4, tzinfo=UTC), datetime(2026, 3, 8, 10, tzinfo=UTC)
    )
    assert set(seen.values()) == {datetime(2026, 3, 8, 7, tzinfo=UTC)}
    assert len(seen) == 2


def test_an_hour_that_happens_twice_on_fall_back_sends_once(app):
    # New York, 1 November 2026: 01:00 happens at 05:00 UTC (EDT) and at 06:00 UTC (EST).
    make_pair(app, "ada", "bo", timezone="America/New_York", weekly_hour=1)
    seen = first_seen(
        app,
        datetime(2026, 11, 1, 3, tzinfo=UTC),
        datetime(2026, 11, 1, 9, tzinfo=UTC),
        step=timedelta(minutes=15),
    )
    assert set(seen.values()) == {datetime(2026, 11, 1, 5, tzinfo=UTC)}
    with app.app_context():
        assert len(weekly_rows()) == 2


def test_a_pass_run_twice_or_overlapping_queues_each_email_once(app):
    make_pair(app, "ada", "bo", timezone="UTC")
    sunday = datetime(2026, 3, 1, 18, tzinfo=UTC)
    with app.app_context():
        assert schedule.queue_due(now=sunday).weekly == 2
        assert schedule.queue_due(now=sunday).weekly == 0
        # An operator re-running an earlier hour: the window is re-read, the keys hold.
        assert schedule.queue_due(now=sunday - timedelta(minutes=1)).weekly == 0
        assert schedule.queue_due(now=sunday + timedelta(minutes=30)).weekly == 0
        assert len(weekly_rows()) == 2


def test_missed_passes_are_caught_up_but_only_within_the_catchup_window(app):
    a, _ = make_pair(app, "ada", "bo", timezone="UTC", weekly_hour=18)
    c, _ = make_pair(app, "cy", "di", timezone="UTC", weekly_hour=9)
    with app.app_context():
        schedule.queue_due(now=datetime(2026, 3, 1, 8, tzinfo=UTC))
        # Nothing ran from 08:00 to 21:00: 18:00 is within 6 hours, 09:00 is not.
        report = schedule.queue_due(now=datetime(2026, 3, 1, 21, tzinfo=UTC))
        assert report.weekly == 2
        assert {row.user_id for row in weekly_rows()} == {a, a + 1}
        assert weekly_rows(c) == []


def test_daily_email_comes_only_during_an_active_week_and_not_on_the_weekly_day(app):
    a, b = make_pair(app, "ada", "bo", timezone="UTC", daily_email=True, daily_hour=8)
    with app.app_context():
        ada = db.session.get(User, a)
        start_agreed_week(
            user=ada,
            theme_key="wishes",
            start_date=date(2026, 3, 3),
            timezone="UTC",
            now=datetime(2026, 3, 1, tzinfo=UTC),
        )
    seen = first_seen(
        app,
        datetime(2026, 3, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 12, 0, tzinfo=UTC),
        kind="daily",
    )
    days = sorted({period for (_, period) in seen})
    # The week runs 3-9 March; Sunday 8 March carries the weekly email instead.
    assert days == ["2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07",
                    "2026-03-09"]  # fmt: skip
    assert {user_id for (user_id, _) in seen} == {a, b}
    assert all(moment.hour == 8 for moment in seen.values())


def test_no_weekly_or_daily_email_while_the_week_is_paused(app):
    a, _ = make_pair(app, "ada", "bo", timezone="UTC", daily_email=True, daily_hour=8)
    with app.app_context():
        ada = db.session.get(User, a)
        start = datetime(2026, 3, 2, tzinfo=UTC)
        start_agreed_week(
            user=ada, theme_key="wishes", start_date=date(2026, 3, 2), timezone="UTC", now=start
        )
        program.pause_week(user=ada, now=start)
    seen = first_seen(app, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
    assert seen == {}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_unpaired_users_and_users_who_turned_it_off_get_no_weekly_email(app):
    register_user(app, "solo@example.com", "Solo")
    a, b = make_pair(app, "ada", "bo", timezone="UTC")
    with app.app_context():
        set_emails(db.session.get(User, b), weekly_email=False)
        schedule.queue_due(now=datetime(2026, 3, 1, 18, tzinfo=UTC))
        assert [row.user_id for row in weekly_rows()] == [a]


def test_users_are_loaded_and_queued_in_batches(app):
    app.config["SCHEDULE_BATCH_SIZE"] = 2
    ids = []
    for index in range(3):
        ids += make_pair(app, f"a{index}", f"b{index}", timezone="UTC")
    with app.app_context():
        assert schedule.queue_due(now=datetime(2026, 3, 1, 18, tzinfo=UTC)).weekly == 6
        assert sorted(row.user_id for row in weekly_rows()) == sorted(ids)


def test_weekly_email_describes_the_week_without_discretion_only_when_asked(app):
    a, b = make_pair(app, "ada", "bo", timezone="UTC")
    with app.app_context():
        set_emails(db.session.get(User, b), discreet_subjects=False)
        start_agreed_week(
            user=db.session.get(User, a),
            theme_key="wishes",
            start_date=date(2026, 2, 27),
            timezone="UTC",
            now=datetime(2026, 3, 1, tzinfo=UTC),
        )
        schedule.queue_due(now=datetime(2026, 3, 1, 18, tzinfo=UTC))
        discreet, plain = weekly_rows(a)[0], weekly_rows(b)[0]
        assert discreet.subject == "Your weekly summary"
        discreet_body, plain_body = outbox.contents(discreet), outbox.contents(plain)
        assert "Writing down a wish" not in discreet_body.text + discreet_body.html
        assert plain.subject == "This week's theme: Writing down a wish"
        assert "day 3" in plain_body.text
        assert "Ada" not in plain.subject + plain_body.text + plain_body.html  # no partner name


def test_names_are_escaped_in_the_html_part_and_kept_as_typed_in_the_text(app):
    a, _ = make_pair(app, "ada", "bo", timezone="UTC")
    with app.app_context():
        ada = db.session.get(User, a)
        ada.display_name = 'Ada <b>"&'
        db.session.commit()
        schedule.queue_due(now=datetime(2026, 3, 1, 18, tzinfo=UTC))
        row = weekly_rows(a)[0]
        body = outbox.contents(row)
        assert 'Hello Ada <b>"&,' in body.text
        assert "Hello Ada &lt;b&gt;&#34;&amp;," in body.html
        assert "<b>" not in body.html
        # The row keeps no link: delivery signs it, the same link the person's settings would.
        assert row.unsubscribe_url is None
        link = outbox.unsubscribe_url(user_id=a, kind=outbox.WEEKLY)
        assert f'href="{link}"' in body.html and link in body.text
        assert "\x1f" not in body.text + body.html


def test_a_pass_stores_each_email_variant_once_not_a_body_per_person(app):
    make_pair(app, "ada", "bo", timezone="UTC")
    make_pair(app, "cy", "di", timezone="UTC")
    with app.app_context():
        schedule.queue_due(now=datetime(2026, 3, 1, 18, tzinfo=UTC))
        rows = weekly_rows()
        assert len(rows) == 4
        assert {(row.text_body, row.html_body) for row in rows} == {("", "")}
        assert len({row.variant_id for row in rows}) == 1  # four people, one stored body
        assert db.session.scalar(select(func.count()).select_from(OutboxVariant)) == 1
        names = {outbox.contents(row).text.split(",")[0] for row in rows}
        assert names == {"Hello Ada", "Hello Bo", "Hello Cy", "Hello Di"}


def test_weekly_email_says_something_new_is_waiting_and_never_what(app):
    a, b = make_pair(app, "ada", "bo", timezone="UTC")
    with app.app_context():
        ada, bo = db.session.get(User, a), db.session.get(User, b)
        user_key = accounts.authenticate(
            email="ada@example.com", password=PASSWORD, kdf=app.extensions["wishnotes.kdf"]
        ).user_key
        words = "I miss the walks along the canal"
        rituals.add_item(user=ada, user_key=user_key, text=words, now=utc(2026, 2, 28, 12))
        schedule.queue_due(now=utc(2026, 3, 1, 18))
        for_bo, for_ada = weekly_rows(b)[0], weekly_rows(a)[0]
        assert "Something new is waiting" in outbox.contents(for_bo).text
        assert "Something new is waiting" in outbox.contents(for_bo).html
        assert (
            "canal"
            not in for_bo.subject + outbox.contents(for_bo).text + outbox.contents(for_bo).html
        )
        assert "table" not in outbox.contents(for_bo).text  # not even which practice
        assert (
            "Something new is waiting" not in outbox.contents(for_ada).text
        )  # her own words are not news
        # Once Bo has looked, the next week's email says nothing of it.
        together.mark_seen(user=bo, practice=together.RITUALS, now=utc(2026, 3, 2))
        schedule.queue_due(now=utc(2026, 3, 8, 18))
        assert "Something new is waiting" not in outbox.contents(weekly_rows(b)[1]).text


@pytest.mark.skipif(
    not os.environ.get("WISHNOTES_TEST_DATABASE_URL"), reason="query plans are PostgreSQL's"
)
@pytest.mark.parametrize("slot", [schedule.weekly_slot, schedule.daily_slot])
def test_each_batch_of_a_slot_starts_in_the_index_where_the_last_ended(app_ctx, slot):
    """Every user due in one hour is read in batches: each one must not sort the whole slot.

    Without `id` at the end of the slot's index, each batch read every user of the slot and
    sorted them to find the next 500: 100,000 users due at once took minutes, growing with the
    square of the count. The plan must walk the slot's index from the last id, with no sort.
    """
    hour = datetime(2026, 3, 8, 18, tzinfo=UTC)
    query = schedule.page(slot("UTC", hour), after=1000, size=500)
    db.session.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: ask for an index
    plan = "\n".join(db.session.execute(text("EXPLAIN " + _sql(query))).scalars())
    db.session.rollback()
    assert "ix_users_" in plan and "_slot" in plan, plan
    assert "Sort" not in plan, plan
    assert re.search(r"Index Cond: .*\bid > ", plan), plan


def _sql(query) -> str:
    return str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
