"""The pair's week (DESIGN §5): which prompt is due today, pausing, finishing, past weeks.

A week starts on a date the pair picks; "today" is the calendar date in the week's own IANA
time zone, so day 1 begins at local midnight for both partners. A pause freezes the day: on
resume the start moves forward by the days spent paused, so the pair goes on where it stopped.
A week is something both agree to: one partner proposes it (theme, first day, zone) and it
waits for the other to accept; until then it is "waiting". Either partner can then pause,
resume or finish it; neither sees why the other paused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy import select, update

from wishnotes import i18n, prompts, submissions, timezones
from wishnotes.errors import (
    InvalidInput,
    NothingToAccept,
    NotPaired,
    NoWeek,
    WeekAlreadyPaused,
    WeekInProgress,
    WeekNotPaused,
)
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.models import Pair, ProgramWeek, User

DAYS = prompts.DAYS_PER_WEEK
# How far from today a start date may lie: a week begun a few days ago, or planned ahead.
START_BEHIND = timedelta(days=DAYS - 1)
START_AHEAD = timedelta(days=60)
PAST_WEEKS_SHOWN = 100

WAITING, UPCOMING, ACTIVE, PAUSED, COMPLETE = "waiting", "upcoming", "active", "paused", "complete"


@dataclass(frozen=True)
class WeekStatus:
    """Where a pair's current week stands at one moment."""

    week: ProgramWeek
    theme: prompts.Week | None  # None if the theme left the library
    state: str  # waiting | upcoming | active | paused | complete
    day: int  # 1..7 while active or paused; 0 before the start or acceptance, 8 after the end
    today: date  # the calendar date in the week's time zone
    prompt: prompts.Prompt | None  # today's prompt while active, else None

    def paused_by(self, user: User) -> bool:
        """Return whether `user` is the partner who paused."""
        return self.state == PAUSED and self.week.paused_by_id == user.id

    def waits_for(self, user: User) -> bool:
        """Return whether the week is a proposal that `user` is asked to accept."""
        return self.state == WAITING and self.week.started_by_id != user.id

    @property
    def ends_on(self) -> date:
        return self.week.start_date + timedelta(days=DAYS - 1)


def prompt_library() -> prompts.Library:
    """Return the prompt library the weeks are drawn from."""
    return prompts.shipped()


def prompt_library_in(language: str | None) -> prompts.Library:
    """Return the library of one person's language (emails), else the default language's."""
    try:
        return prompts.shipped(i18n.normalize(language) or i18n.DEFAULT)
    except prompts.UnknownLanguageError:
        return prompts.shipped(i18n.DEFAULT)


def in_language(current: WeekStatus, language: str | None) -> WeekStatus:
    """Return the same status with its theme and prompt taken from `language`'s library.

    An email is written in its recipient's language, whatever language is in effect; the
    state and day do not depend on it. A theme missing from that library comes in the default
    language rather than not at all.
    """
    theme = _theme(current.week.theme_key, language=language)
    prompt = theme.prompt_for_day(current.day) if current.state == ACTIVE and theme else None
    return replace(current, theme=theme, prompt=prompt)


def current_week(*, pair: Pair | None) -> ProgramWeek | None:
    """Return the pair's unfinished week, if there is one."""
    if pair is None or pair.ended_at is not None:
        return None
    return db.session.scalar(
        select(ProgramWeek).where(ProgramWeek.pair_id == pair.id, ProgramWeek.finished_at.is_(None))
    )


def status_of(week: ProgramWeek, *, now: datetime) -> WeekStatus:
    """Return the state, day and today's prompt of a week at `now`."""
    theme = _theme(week.theme_key)
    today = timezones.local_date(now, week.timezone)
    reference = (
        today if week.paused_at is None else timezones.local_date(week.paused_at, week.timezone)
    )
    day = min(max((reference - week.start_date).days + 1, 0), DAYS + 1)
    if week.accepted_at is None:
        state, day = WAITING, 0
    elif week.paused_at is not None:
        state = PAUSED
        day = max(day, 1)
    elif day < 1:
        state = UPCOMING
    elif day > DAYS:
        state = COMPLETE
    else:
        state = ACTIVE
    prompt = theme.prompt_for_day(day) if state == ACTIVE and theme else None
    return WeekStatus(week=week, theme=theme, state=state, day=day, today=today, prompt=prompt)


def status(*, pair: Pair | None, now: datetime) -> WeekStatus | None:
    """Return the status of the pair's current week, or None when there is none."""
    week = current_week(pair=pair)
    return None if week is None else status_of(week, now=now)


def todays_prompt(*, pair: Pair | None, now: datetime) -> prompts.Prompt | None:
    """Return today's prompt of the pair's week; None with no week, before it, paused or over."""
    current = status(pair=pair, now=now)
    return None if current is None else current.prompt


def find_prompt(prompt_key: str | None) -> prompts.Prompt | None:
    """Return the prompt a compose link or form names, or None for a missing or unknown key."""
    if not prompt_key or len(prompt_key) > 64:
        return None
    try:
        return prompt_library().prompt(prompt_key)
    except LookupError:
        return None


def find_starter(*, prompt_key: str | None, index: object) -> tuple[prompts.Prompt, str] | None:
    """Return (prompt, starter text) for a compose link such as ?prompt=wishes-1&starter=0."""
    prompt = find_prompt(prompt_key)
    try:
        position = int(str(index))
    except ValueError:
        return None
    if prompt is None:
        return None
    if not 0 <= position < len(prompt.starters):
        return None
    return prompt, prompt.starters[position]


def suggested_theme(*, pair: Pair | None) -> prompts.Week:
    """Return the theme to offer next: the one after the last finished week, else the first."""
    lib = prompt_library()
    if pair is not None:
        last = db.session.scalar(
            select(ProgramWeek.theme_key)
            .where(ProgramWeek.pair_id == pair.id, ProgramWeek.finished_at.is_not(None))
            .order_by(ProgramWeek.finished_at.desc(), ProgramWeek.id.desc())
            .limit(1)
        )
        if last is not None:
            try:
                return lib.next_week(last) or lib.first_week()
            except LookupError:  # a theme that left the library
                pass
    return lib.first_week()


def past_weeks(*, pair: Pair | None) -> list[ProgramWeek]:
    """Return the pair's finished weeks, newest first."""
    if pair is None:
        return []
    return list(
        db.session.scalars(
            select(ProgramWeek)
            .where(ProgramWeek.pair_id == pair.id, ProgramWeek.finished_at.is_not(None))
            .order_by(ProgramWeek.finished_at.desc(), ProgramWeek.id.desc())
            .limit(PAST_WEEKS_SHOWN)
        )
    )


def theme_title(key: str) -> str:
    """Return a theme's title, or a neutral one when the key left the library."""
    theme = _theme(key)
    return theme.title if theme else str(_l("A week"))


def start_week(
    *,
    user: User,
    theme_key: str,
    start_date: date,
    timezone: str,
    now: datetime,
    submission_key: str | None = None,
) -> ProgramWeek:
    """Propose a week of the given theme from `start_date` (a complete week is finished first).

    It runs once the partner accepts it (accept_week). A `submission_key` (see
    wishnotes.submissions) that already proposed a week returns that week.
    """
    submission_key = submissions.checked(submission_key)
    if (earlier := _started(user, submission_key)) is not None:
        return earlier
    pair = _pair_of(user)
    timezone = timezones.check(timezone)
    try:
        prompt_library().week(theme_key or "")
    except LookupError:
        raise InvalidInput(_l("Please choose a theme from the list."), field="theme") from None
    today = timezones.local_date(now, timezone)
    if not isinstance(start_date, date) or isinstance(start_date, datetime):
        raise InvalidInput(_l("Please choose a start date."), field="start_date")
    if start_date < today - START_BEHIND:
        raise InvalidInput(
            _l("Please choose a date within the last week or later."), field="start_date"
        )
    if start_date > today + START_AHEAD:
        raise InvalidInput(
            _l("Please choose a date within the next two months."), field="start_date"
        )

    current = current_week(pair=pair)
    if current is not None:
        if status_of(current, now=now).state != COMPLETE:
            # This same form, posted twice at once, may have started it a moment ago.
            if (earlier := _started(user, submission_key)) is not None:
                return earlier
            raise WeekInProgress()
        current.finished_at = now
    week = ProgramWeek(
        pair_id=pair.id,
        theme_key=theme_key,
        start_date=start_date,
        timezone=timezone,
        started_by_id=user.id,
        created_at=now,
        submission_key=submission_key,
    )
    db.session.add(week)
    # Refused when the partner, or this same form, started one at the same moment.
    return submissions.commit_once(
        week, earlier=lambda: _started(user, submission_key), refused=WeekInProgress
    )


def _started(user: User, submission_key: str | None) -> ProgramWeek | None:
    return submissions.made_by(ProgramWeek, ProgramWeek.started_by_id, user.id, submission_key)


def accept_week(*, user: User, now: datetime) -> ProgramWeek:
    """Accept the week the partner proposed; the days spent waiting move its start forward."""
    week = _current_or_raise(user)
    if week.accepted_at is not None or week.started_by_id == user.id:
        raise NothingToAccept()
    proposed_on = timezones.local_date(week.created_at, week.timezone)
    waited = (timezones.local_date(now, week.timezone) - proposed_on).days
    if waited > 0 and week.start_date < timezones.local_date(now, week.timezone):
        week.start_date = week.start_date + timedelta(days=waited)
    week.accepted_at = now
    db.session.commit()
    return week


def pause_week(*, user: User, now: datetime) -> ProgramWeek:
    """Pause the pair's week; either partner may, and needs to give no reason."""
    week = _current_or_raise(user)
    claimed = db.session.execute(
        update(ProgramWeek)
        .where(ProgramWeek.id == week.id, ProgramWeek.paused_at.is_(None))
        .values(paused_at=now, paused_by_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise WeekAlreadyPaused()
    db.session.commit()
    db.session.refresh(week)
    return week


def resume_week(*, user: User, now: datetime) -> ProgramWeek:
    """Resume a paused week where it stopped; either partner can."""
    week = _current_or_raise(user)
    if week.paused_at is None:
        raise WeekNotPaused()
    paused_days = (
        timezones.local_date(now, week.timezone)
        - timezones.local_date(week.paused_at, week.timezone)
    ).days
    week.start_date = week.start_date + timedelta(days=max(paused_days, 0))
    week.paused_at = None
    week.paused_by_id = None
    db.session.commit()
    return week


def finish_week(*, user: User, now: datetime) -> ProgramWeek:
    """Finish the pair's week (or withdraw or decline a proposed one); either partner can."""
    week = _current_or_raise(user)
    if week.accepted_at is None:
        db.session.delete(week)  # a proposal nobody took up is not a week that was had
    else:
        week.finished_at = now
    db.session.commit()
    return week


def _pair_of(user: User) -> Pair:
    if user.pair_id is None:
        raise NotPaired()
    return db.session.get(Pair, user.pair_id)


def _current_or_raise(user: User) -> ProgramWeek:
    week = current_week(pair=_pair_of(user))
    if week is None:
        raise NoWeek()
    return week


def _theme(key: str, *, language: str | None = None) -> prompts.Week | None:
    library = prompt_library() if language is None else prompt_library_in(language)
    try:
        return library.week(key)
    except LookupError:
        if language is None or library.language == i18n.DEFAULT:
            return None
        return _theme(key, language=i18n.DEFAULT)
