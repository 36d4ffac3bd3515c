"""Who is due a weekly or daily email now, by each user's local time, in batches.

A pass looks at the wall-clock hours that began, in each time zone that users chose, since
the previous pass (its mark), and queues an email for the users whose chosen weekday and hour
is one of them. Wall-clock hours make daylight saving come out right: a skipped local hour
(02:00 on a spring-forward night) is served with the next one, and an hour that happens twice
(01:00 on a fall-back night) is served once. The outbox's idempotency keys ("weekly" per local
ISO week, "daily" per local date) make passes that overlap or run twice harmless.

The email hour is the user's own (their time zone); the week's day and prompt are the pair's
(the week's time zone); the words, subject and prompt included, are in the user's own language
(each language is a variant of its own: a partner's language plays no part). No weekly or daily
email goes out while the pair's week is paused, and on the weekday of the weekly email the daily
one is left out (the weekly one names the day).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from wishnotes import database, i18n, mail, outbox, program, timezones, together
from wishnotes.extensions import db
from wishnotes.models import ProgramWeek, ScheduleMark, User

MARK = "emails"
# What differs per recipient in a weekly or daily email: filled in at delivery (outbox).
SLOTS = ("name", "unsubscribe_url")
# With no usable mark (first pass, or a --now before the mark) a pass looks back this far.
FIRST_LOOKBACK = timedelta(hours=1)

_USER_COLUMNS = (
    User.id,
    User.email,
    User.display_name,
    User.pair_id,
    User.discreet_subjects,
    User.language,
)


@dataclass
class ScheduleReport:
    """What one scheduler pass queued, and the window of time it covered."""

    weekly: int = 0
    daily: int = 0
    since: datetime | None = None
    until: datetime | None = None

    @property
    def queued(self) -> int:
        return self.weekly + self.daily


def queue_due(
    *, now: datetime, batch_size: int | None = None, catchup: timedelta | None = None
) -> ScheduleReport:
    """Queue the weekly and daily emails whose local hour began since the last pass."""
    config = current_app.config
    since = _window_start(now=now, catchup=catchup or config["SCHEDULE_CATCHUP"])
    report = ScheduleReport(since=since, until=now)
    zones = list(db.session.scalars(select(User.timezone).distinct()))
    db.session.commit()
    run = _Pass(
        now=now,
        batch_size=batch_size or config["SCHEDULE_BATCH_SIZE"],
        merge=mail.MailMerge(),
        links={"open_url": mail.link("/week/"), "settings_url": mail.link("/settings/emails")},
    )
    for zone in zones:
        for hour in timezones.passed_hours(zone, after=since, until=now):
            report.weekly += _queue_weekly(run, zone, hour)
            report.daily += _queue_daily(run, zone, hour)
    _advance_mark(now)
    return report


def weekly_period(local_hour: datetime) -> str:
    """Return the idempotency period of a weekly email: the local ISO week."""
    year, week, _ = local_hour.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class _Pass:
    """What every email of one pass shares, worked out once."""

    now: datetime
    batch_size: int
    merge: mail.MailMerge
    links: dict[str, str]
    stored: dict[int, int] = field(default_factory=dict)  # id(variant) -> its OutboxVariant id

    def variant_id(self, variant: mail.Rendered) -> int:
        """Store a variant the first time an email of this pass uses it."""
        key = id(variant)  # the merge keeps every variant alive for the whole pass
        if key not in self.stored:
            self.stored[key] = outbox.store_variant(variant, now=self.now)
        return self.stored[key]


def weekly_slot(zone: str, hour: datetime):
    """The users of one zone whose weekly email falls in this local hour."""
    return select(*_USER_COLUMNS).where(
        User.timezone == zone,
        User.weekly_email.is_(True),
        User.weekly_weekday == hour.weekday(),
        User.weekly_hour == hour.hour,
        User.pair_id.is_not(None),
    )


def daily_slot(zone: str, hour: datetime):
    """The users of one zone whose daily email falls in this local hour (not on the weekly day)."""
    return select(*_USER_COLUMNS).where(
        User.timezone == zone,
        User.daily_email.is_(True),
        User.daily_hour == hour.hour,
        User.pair_id.is_not(None),
        or_(User.weekly_email.is_(False), User.weekly_weekday != hour.weekday()),
    )


def _queue_weekly(run: _Pass, zone: str, hour: datetime) -> int:
    query = weekly_slot(zone, hour)
    period = weekly_period(hour)
    queued = 0
    for users in _batches(query, run.batch_size):
        statuses = _Statuses({user.pair_id for user in users}, now=run.now)
        waiting = together.users_with_news({user.id: user.pair_id for user in users})
        emails = []
        for user in users:
            language = _language(user)
            current = statuses.get(user.pair_id, language)
            if current is not None and current.state == program.PAUSED:
                continue
            news = user.id in waiting
            emails.append(
                _weekly_email(run, user, current, language=language, period=period, news=news)
            )
        queued += outbox.enqueue_many(emails, now=run.now)
        db.session.commit()
    return queued


def _queue_daily(run: _Pass, zone: str, hour: datetime) -> int:
    query = daily_slot(zone, hour)
    period = hour.date().isoformat()
    queued = 0
    for users in _batches(query, run.batch_size):
        statuses = _Statuses({user.pair_id for user in users}, now=run.now)
        emails = []
        for user in users:
            language = _language(user)
            current = statuses.get(user.pair_id, language)
            if current is not None and current.prompt is not None:
                emails.append(_daily_email(run, user, current, language=language, period=period))
        queued += outbox.enqueue_many(emails, now=run.now)
        db.session.commit()
    return queued


def _batches(query, batch_size: int) -> Iterator[list[Any]]:
    """Yield the query's rows in id order, batch_size at a time (keyset, so no OFFSET scans)."""
    last_id = 0
    while True:
        rows = db.session.execute(page(query, after=last_id, size=batch_size)).all()
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last_id = rows[-1].id


def page(query, *, after: int, size: int):
    """The next batch of a slot: served in id order by the slot's index (see models)."""
    return query.where(User.id > after).order_by(User.id).limit(size)


class _Statuses:
    """The weeks of a batch's pairs, each in the languages its recipients read."""

    def __init__(self, pair_ids: set[int], *, now: datetime) -> None:
        weeks = db.session.scalars(
            select(ProgramWeek).where(
                database.one_of(ProgramWeek.pair_id, pair_ids), ProgramWeek.finished_at.is_(None)
            )
        )
        self._statuses = {week.pair_id: program.status_of(week, now=now) for week in weeks}
        self._localized: dict[tuple[int, str], program.WeekStatus] = {}

    def get(self, pair_id: int, language: str) -> program.WeekStatus | None:
        current = self._statuses.get(pair_id)
        if current is None:
            return None
        key = (pair_id, language)
        if key not in self._localized:
            self._localized[key] = program.in_language(current, language)
        return self._localized[key]


def _language(user: Any) -> str:
    return i18n.normalize(user.language) or i18n.DEFAULT


def _weekly_email(
    run: _Pass,
    user: Any,
    current: program.WeekStatus | None,
    *,
    language: str,
    period: str,
    news: bool = False,
) -> outbox.Queued:
    discreet = user.discreet_subjects
    theme = current.theme if current is not None else None
    if theme is not None and current.state in (program.ACTIVE, program.UPCOMING):
        subject = mail.Subject("weekly", discreet, (("theme", theme.title),))
    else:
        subject = mail.Subject("weekly_idle", discreet)
    variant = run.merge.variant(
        "weekly",
        language=language,
        subject=subject,
        slots=SLOTS,
        discreet=discreet,
        state=current.state if current is not None else None,
        theme=theme,
        day=current.day if current is not None else None,
        prompt=current.prompt if current is not None else None,
        starts_on=current.week.start_date if current is not None else None,
        news=news,
        **run.links,
    )
    return outbox.Queued(
        user_id=user.id,
        kind=outbox.WEEKLY,
        period=period,
        to_address=user.email,
        rendered=variant,
        unsubscribe_url=None,  # signed at delivery (outbox._unsubscribe_of)
        send_after=run.now,
        variant_id=run.variant_id(variant),
    )


def _daily_email(
    run: _Pass, user: Any, current: program.WeekStatus, *, language: str, period: str
) -> outbox.Queued:
    discreet = user.discreet_subjects
    subject = mail.Subject("daily", discreet, (("prompt", current.prompt.title),))
    variant = run.merge.variant(
        "daily",
        language=language,
        subject=subject,
        slots=SLOTS,
        discreet=discreet,
        day=current.day,
        prompt=current.prompt,
        **run.links,
    )
    return outbox.Queued(
        user_id=user.id,
        kind=outbox.DAILY,
        period=period,
        to_address=user.email,
        rendered=variant,
        unsubscribe_url=None,  # signed at delivery (outbox._unsubscribe_of)
        send_after=run.now,
        variant_id=run.variant_id(variant),
    )


def _window_start(*, now: datetime, catchup: timedelta) -> datetime:
    mark = db.session.get(ScheduleMark, MARK)
    db.session.commit()
    if mark is None or mark.scanned_until >= now:
        return now - FIRST_LOOKBACK
    return max(mark.scanned_until, now - catchup)


def _advance_mark(now: datetime) -> None:
    mark = db.session.get(ScheduleMark, MARK)
    if mark is None:
        db.session.add(ScheduleMark(name=MARK, scanned_until=now))
    elif mark.scanned_until < now:
        mark.scanned_until = now
    try:
        db.session.commit()
    except IntegrityError:  # another pass wrote the first mark at the same moment
        db.session.rollback()
