"""The `wishnotes` command: serve, worker, db, bench and the usual Flask helpers."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext

from wishnotes import create_app, database, tasks
from wishnotes.bench import bench
from wishnotes.bench_crypto import crypto_command
from wishnotes.bench_emails import bench_emails
from wishnotes.bench_history import history_command
from wishnotes.bench_notes import notes_command
from wishnotes.bench_pages import pages as bench_pages


def _create_app():
    return create_app()


@click.group(
    cls=FlaskGroup, create_app=_create_app, add_default_commands=False, set_debug_flag=False
)
def main() -> None:
    """Wishnotes: a private messenger of wishes for two partners."""


main.add_command(shell_command)
main.add_command(routes_command)
main.add_command(bench)
for command in (notes_command, bench_emails, bench_pages, history_command, crypto_command):
    bench.add_command(command)


def _configure_logging(app) -> None:
    """Log to standard error at LOG_LEVEL; SQL statements (values hidden) only at DEBUG.

    `force`: the migrations' logging setup, which `serve` runs first, would otherwise keep
    everything below WARNING out of the server's log.
    """
    import logging

    level = logging.getLevelName(app.config["LOG_LEVEL"])
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s", force=True)
    sql_level = logging.INFO if level == logging.DEBUG else logging.WARNING
    logging.getLogger("sqlalchemy.engine").setLevel(sql_level)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@with_appcontext
def serve(host: str, port: int, threads: int) -> None:
    """Serve the app with waitress (a production WSGI server, no debugger)."""
    import waitress
    from flask_migrate import upgrade

    app = current_app._get_current_object()
    if database.is_sqlite(app.config["SQLALCHEMY_DATABASE_URI"]):
        # The embedded default keeps itself up to date; PostgreSQL deployments run `db upgrade`.
        upgrade()
    _configure_logging(app)
    consumer = None
    if tasks.is_embedded(app):
        # One command, a working app with emails: the job consumer runs in this process.
        consumer = tasks.start_embedded_consumer(app)
        click.echo("Background jobs (emails) run in this process.")
    click.echo(f"Wishnotes on http://{host}:{port}/ ({app.config['ENV']})")
    try:
        waitress.serve(app, host=host, port=port, threads=threads, ident="wishnotes")
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)


@main.command("worker")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker threads [HUEY_WORKERS].")
@click.option("--no-periodic", is_flag=True, help="Leave the minute schedule to another worker.")
@with_appcontext
def worker(workers: int | None, no_periodic: bool) -> None:
    """Run the background jobs (email delivery and schedule) until Ctrl-C."""
    app = current_app._get_current_object()
    if app.config["HUEY_IMMEDIATE"]:
        raise click.ClickException("HUEY_IMMEDIATE is on: jobs run where they are queued.")
    _configure_logging(app)
    tasks.run_worker(app, workers=workers, periodic=not no_periodic)


@main.group("emails")
def emails() -> None:
    """Email jobs, for operators and cron-style deployments."""


def _moment(moment: str | None):
    """Return `--now` as an aware UTC datetime, or the current time."""
    from datetime import UTC, datetime

    from wishnotes.clock import now

    if not moment:
        return now()
    try:
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            "use ISO-8601, e.g. 2026-03-08T23:00:00Z", param_hint="--now"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@emails.command("run-due")
@click.option("--now", "moment", help="Act as if it were this ISO-8601 time (default: now).")
@with_appcontext
def run_due(moment: str | None) -> None:
    """Queue the emails due now and deliver everything due, then print how many were sent."""
    result = tasks.run_due(now=_moment(moment))
    click.echo(
        f"Sent {result.sent} emails ({result.queued} newly due, {result.retried} to retry "
        f"later, {result.failed} given up, {result.skipped} no longer needed)."
    )


@main.command("housekeeping")
@click.option("--now", "moment", help="Act as if it were this ISO-8601 time (default: now).")
@with_appcontext
def housekeeping_command(moment: str | None) -> None:
    """Delete expired sessions, logins, invites and reset links once (for cron); print counts."""
    from wishnotes import housekeeping

    report = housekeeping.run(now=_moment(moment), config=current_app.config)
    click.echo(report.summary())


if __name__ == "__main__":
    main()
