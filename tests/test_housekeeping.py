"""Housekeeping deletes what has ended and keeps what lives, at an explicit `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import select, update

from wishnotes import (
    accounts,
    housekeeping,
    keysessions,
    logins,
    mail,
    outbox,
    pairing,
    recovery,
    tasks,
)
from wishnotes.cli import main
from wishnotes.extensions import db, huey
from wishnotes.models import (
    Invite,
    KeySession,
    Login,
    OutboxEmail,
    OutboxVariant,
    PasswordReset,
    User,
)

from .conftest import PASSWORD, register_user

T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LIFETIMES = {"idle": timedelta(days=7), "remembered": timedelta(days=30)}


def _user(app, name: str) -> User:
    user_id, _ = register_user(app, f"{name}@example.com", name.title())
    return db.session.get(User, user_id)


def _key(user: User) -> bytes:
    """The user key a login would unlock: invites are made and accepted with keys unlocked."""
    kdf = current_app.extensions["wishnotes.kdf"]
    return accounts.authenticate(email=user.email, password=PASSWORD, kdf=kdf).user_key


def _key_session(user: User, login: Login, *, created: datetime, used: datetime) -> str:
    keysessions.open_session(user=user, user_key=bytes(32), login_id=login.id, now=created)
    row = db.session.scalars(select(KeySession).order_by(KeySession.created_at.desc())).first()
    db.session.execute(update(KeySession).where(KeySession.id == row.id).values(last_used_at=used))
    db.session.commit()
    return row.id


def _emails(user: User, statuses: dict[str, tuple[str, datetime, datetime | None]]) -> None:
    """Queue one email per period, then record how each one ended, as delivery would."""
    for period, (status, created, sent) in statuses.items():
        outbox.enqueue_many(
            [
                outbox.Queued(
                    user_id=user.id,
                    kind=outbox.WEEKLY,
                    period=period,
                    to_address=user.email,
                    rendered=mail.Rendered("Your weekly reminder", "words", "<p>words</p>"),
                    unsubscribe_url=None,
                    send_after=created,
                )
            ],
            now=created,
        )
        db.session.commit()
        values = {"status": status, "sent_at": sent}
        if status == outbox.SKIPPED:
            values.update(text_body="", html_body="")  # skipping empties at once
        db.session.execute(update(OutboxEmail).where(OutboxEmail.period == period).values(**values))
        db.session.commit()


@pytest.fixture
def house(app_ctx):
    """Rows that have ended and rows that live, all around the moment T."""
    ada, bo, cy, di, ed = (_user(app_ctx, name) for name in ("ada", "bo", "cy", "di", "ed"))
    live = {}
    # Logins: one expired a day ago, one live, one remembered and live.
    logins.open_login(
        user=ada, device="Old", remember=False, now=T - timedelta(days=8), **LIFETIMES
    )
    login = logins.open_login(
        user=ada, device="Live", remember=False, now=T - timedelta(days=1), **LIFETIMES
    ).login
    logins.open_login(
        user=bo, device="Kept", remember=True, now=T - timedelta(days=20), **LIFETIMES
    )
    # Key sessions (30 minutes idle, 12 hours at most) under the live login.
    live["key"] = _key_session(
        ada, login, created=T - timedelta(hours=1), used=T - timedelta(minutes=5)
    )
    _key_session(ada, login, created=T - timedelta(hours=2), used=T - timedelta(minutes=31))
    _key_session(ada, login, created=T - timedelta(hours=13), used=T - timedelta(minutes=1))
    # Invites: live, expired, withdrawn, used.
    pairing.create_invite(user=ada, user_key=_key(ada), now=T - timedelta(hours=1))
    pairing.create_invite(user=bo, user_key=_key(bo), now=T - timedelta(days=3))
    pairing.create_invite(user=cy, user_key=_key(cy), now=T - timedelta(hours=1))
    pairing.revoke_invite(user=cy, now=T - timedelta(minutes=30))
    token = pairing.create_invite(user=di, user_key=_key(di), now=T - timedelta(hours=2))
    pairing.accept_invite(user=ed, token=token, now=T - timedelta(hours=1), user_key=_key(ed))
    live["invite"] = db.session.scalar(select(Invite.id).where(Invite.inviter_id == ada.id))
    # Reset links: live, replaced by a newer one, expired.
    recovery.request_reset(email="ada@example.com", now=T - timedelta(minutes=30))
    db.session.commit()
    recovery.request_reset(email="ada@example.com", now=T - timedelta(minutes=10))
    db.session.commit()
    recovery.request_reset(email="bo@example.com", now=T - timedelta(hours=2))
    db.session.commit()
    live["reset"] = db.session.scalar(
        select(PasswordReset.id).where(
            PasswordReset.used_at.is_(None), PasswordReset.expires_at > T
        )
    )
    # Emails: kept for a week after they end; a pending one is never touched.
    _emails(
        ada,
        {
            "sent-long-ago": (outbox.SENT, T - timedelta(days=9), T - timedelta(days=8)),
            "sent-yesterday": (outbox.SENT, T - timedelta(days=1), T - timedelta(days=1)),
            "pending": (outbox.PENDING, T - timedelta(days=10), None),
            "given-up": (outbox.FAILED, T - timedelta(days=9), None),
            "skipped": (outbox.SKIPPED, T - timedelta(days=9), None),
        },
    )
    return live


def _bodies() -> dict[str, str]:
    return {row.period: row.text_body for row in db.session.scalars(select(OutboxEmail))}


def test_one_pass_deletes_what_ended_and_keeps_what_lives(app_ctx, house):
    report = housekeeping.run(now=T, config=app_ctx.config)
    assert report == housekeeping.Report(
        key_sessions=2, logins=1, invites=3, reset_links=2, email_bodies=2
    )
    assert db.session.scalars(select(KeySession.id)).all() == [house["key"]]
    assert sorted(db.session.scalars(select(Login.device))) == ["Kept", "Live"]
    assert db.session.scalars(select(Invite.id)).all() == [house["invite"]]
    assert db.session.scalars(select(PasswordReset.id)).all() == [house["reset"]]
    assert _bodies() == {
        "sent-long-ago": "",
        "sent-yesterday": "words",
        "pending": "words",
        "given-up": "",
        "skipped": "",
    }
    assert db.session.query(OutboxEmail).count() == 5  # rows stay: they prevent doubles
    again = housekeeping.run(now=T, config=app_ctx.config)
    assert again == housekeeping.Report(0, 0, 0, 0, 0)


def test_the_live_rows_end_in_their_turn(app_ctx, house):
    later = housekeeping.run(now=T + timedelta(days=31), config=app_ctx.config)
    assert later.key_sessions == 3 and later.logins == 3 and later.invites == 4
    assert later.reset_links == 3 and later.email_bodies == 3
    assert set(_bodies().values()) == {"", "words"}  # the pending email keeps its words
    assert _bodies()["pending"] == "words"


def test_outbox_retention_comes_from_the_config(app_ctx, house):
    app_ctx.config["OUTBOX_RETENTION"] = timedelta(hours=1)
    report = housekeeping.run(now=T, config=app_ctx.config)
    assert report.email_bodies == 3
    assert _bodies()["sent-yesterday"] == ""


def test_housekeeping_is_a_periodic_job_of_every_consumer(app_ctx, house):
    due = [task.name for task in huey.read_periodic(datetime(2026, 3, 10, 13, 23))]
    assert "housekeeping_pass" in due
    assert "housekeeping_pass" not in [
        t.name for t in huey.read_periodic(datetime(2026, 3, 10, 13, 24))
    ]
    app_ctx.config["NOW"] = T
    report = tasks.housekeeping_pass.call_local()
    assert report.key_sessions == 2 and report.logins == 1


def test_housekeeping_command_runs_one_pass_and_prints_the_counts(app, runner):
    with app.app_context():
        user = _user(app, "ada")
        logins.open_login(
            user=user, device="Old", remember=False, now=T - timedelta(days=8), **LIFETIMES
        )
    result = runner.invoke(main, ["housekeeping", "--now", "2026-03-10T12:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "Removed 0 key sessions, 1 logins, 0 invites and 0 reset links" in result.output
    assert "emptied 0 email bodies" in result.output
    bad = runner.invoke(main, ["housekeeping", "--now", "next tuesday"])
    assert bad.exit_code != 0 and "ISO-8601" in bad.output


def test_outbox_retention_is_read_in_days_from_the_environment():
    import config as app_config

    settings = app_config.load({"WISHNOTES_OUTBOX_RETENTION_DAYS": "2.5"})
    assert settings["OUTBOX_RETENTION"] == timedelta(days=2, hours=12)
    for bad in ("-1", "a week", "inf"):
        with pytest.raises(app_config.ConfigError, match="WISHNOTES_OUTBOX_RETENTION_DAYS"):
            app_config.load({"WISHNOTES_OUTBOX_RETENTION_DAYS": bad})


def test_bulk_email_bodies_go_once_no_email_waits_for_them(app_ctx):
    """A weekly body shared by many rows is deleted once every row using it has ended."""
    ada, bo = _user(app_ctx, "ada"), _user(app_ctx, "bo")
    old = T - timedelta(days=9)
    words = mail.Rendered("Your weekly reminder", "words", "<p>words</p>")
    finished = outbox.store_variant(words, now=old)  # every email using it ended long ago
    shared = outbox.store_variant(words, now=old)  # one of its emails still waits
    db.session.commit()
    emails = [
        (ada, "w1", finished, outbox.SENT),
        (bo, "w1", finished, outbox.FAILED),
        (ada, "w2", shared, outbox.SENT),
        (bo, "w2", shared, outbox.PENDING),
    ]
    for user, period, variant, _ in emails:
        outbox.enqueue_many(
            [
                outbox.Queued(
                    user_id=user.id,
                    kind=outbox.WEEKLY,
                    period=period,
                    to_address=user.email,
                    rendered=words,
                    unsubscribe_url=None,
                    send_after=old,
                    variant_id=variant,
                )
            ],
            now=old,
        )
    db.session.commit()
    for user, period, _, status in emails:
        db.session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.user_id == user.id, OutboxEmail.period == period)
            .values(status=status, sent_at=old if status == outbox.SENT else None)
        )
    db.session.commit()

    report = housekeeping.run(now=T, config=app_ctx.config)

    assert report.email_bodies == 3
    assert db.session.scalars(select(OutboxVariant.id)).all() == [shared]
    waiting = db.session.scalars(select(OutboxEmail).where(OutboxEmail.status == outbox.PENDING))
    assert [row.variant_id for row in waiting] == [shared]
    ended = db.session.scalars(
        select(OutboxEmail.variant_id).where(OutboxEmail.status != "pending")
    )
    assert set(ended) == {None}
    assert housekeeping.run(now=T, config=app_ctx.config).email_bodies == 0
