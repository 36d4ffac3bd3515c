"""`wishnotes demo`: a demo pair to try the app alone (development only).

Two accounts, paired, with a week both agreed to, a few notes each way, answers and a written
reply, all made through the same services a person's clicks go through. Sign in as each in two
browsers (or one normal and one private window) to see both sides.
"""

from __future__ import annotations

import secrets

import click
from flask import current_app
from flask.cli import with_appcontext

DEMO_PEOPLE = (("Ada", "demo-ada@example.com"), ("Sam", "demo-sam@example.com"))


@click.command("demo")
@click.option("--timezone", "zone", default="UTC", show_default=True, help="Their time zone.")
@with_appcontext
def demo(zone: str) -> None:
    """Create a demo pair with notes, answers and a started week (development only)."""
    from sqlalchemy import select

    from wishnotes.extensions import db
    from wishnotes.models import User

    app = current_app._get_current_object()
    if app.config["ENV"] != "development":
        raise click.ClickException("The demo pair is for development only (WISHNOTES_ENV).")
    _upgrade_embedded_database(app)
    emails = [email for _, email in DEMO_PEOPLE]
    if db.session.scalar(select(User.id).where(User.email.in_(emails))) is not None:
        raise click.ClickException(
            "The demo pair exists already; sign in with the password printed when it was made, "
            "or start again with a fresh instance folder."
        )
    password = "-".join(secrets.token_hex(3) for _ in range(4))
    make_demo_pair(password=password, zone=zone)
    base = app.config.get("BASE_URL") or "http://127.0.0.1:5000"
    click.echo("A demo pair is ready: paired, a week under way, notes and answers both ways.")
    click.echo(f"Sign in at {base.rstrip('/')}/login as either of them:")
    for name, email in DEMO_PEOPLE:
        click.echo(f"  {name}: {email}  password: {password}")
    click.echo("Use two browsers, or a normal and a private window, to be both at once.")


def _upgrade_embedded_database(app) -> None:
    from flask_migrate import upgrade

    from wishnotes import database

    if database.is_sqlite(app.config["SQLALCHEMY_DATABASE_URI"]):
        upgrade()


def make_demo_pair(*, password: str, zone: str) -> None:
    """Register, pair and fill the demo accounts through the services."""
    from wishnotes import accounts, notes, pairing, program, timezones
    from wishnotes.clock import now
    from wishnotes.extensions import db

    kdf = current_app.extensions["wishnotes.kdf"]
    people = {}
    for name, email in DEMO_PEOPLE:
        reg = accounts.register(
            email=email, display_name=name, password=password, kdf=kdf, now=now()
        )
        check = accounts.kit_check(user=reg.user, recovery_key=reg.recovery_key)
        accounts.confirm_recovery_kit(user=reg.user, check=check, typed=check.group, now=now())
        reg.user.timezone = timezones.check(zone)
        people[name] = reg
    db.session.commit()
    ada, sam = people["Ada"], people["Sam"]
    token = pairing.create_invite(user=ada.user, user_key=ada.user_key, now=now())
    pairing.accept_invite(user=sam.user, token=token, now=now(), user_key=sam.user_key)
    program.start_week(
        user=ada.user,
        theme_key=program.suggested_theme(pair=ada.user.pair).key,
        start_date=timezones.local_date(now(), zone),
        timezone=zone,
        now=now(),
    )
    program.accept_week(user=sam.user, now=now())
    first = notes.write_note(
        user=ada.user,
        user_key=ada.user_key,
        text="I would like us to have breakfast on the balcony on Sunday, phones inside.",
        prompt_key="wishes-1",
        now=now(),
    )
    notes.write_note(
        user=ada.user,
        user_key=ada.user_key,
        text="It would please me if you told me one thing you liked about today.",
        sealed=True,
        now=now(),
    )
    from_sam = notes.write_note(
        user=sam.user,
        user_key=sam.user_key,
        text="Let's try a slow walk after dinner, just around the block.",
        title="A small wish",
        now=now(),
    )
    notes.answer_note(
        user=sam.user,
        user_key=sam.user_key,
        note_id=first.id,
        choice="talk",
        reply="Yes to breakfast! Can we talk about the phones part first?",
        now=now(),
    )
    notes.answer_note(
        user=ada.user, user_key=ada.user_key, note_id=from_sam.id, choice="yes", now=now()
    )
