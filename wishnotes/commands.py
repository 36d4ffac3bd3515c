"""The commands that run the app: serve, worker and the email jobs (see wishnotes.cli).

Heavy modules are imported inside each command, so `wishnotes --help` stays instant.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--trusted-proxy",
    default="*",
    show_default=True,
    help="Address of the proxy whose X-Forwarded-* headers count, when PROXY_HOPS > 0.",
)
@with_appcontext
def serve(host: str, port: int, threads: int, trusted_proxy: str) -> None:
    """Serve the app with waitress (a production WSGI server, no debugger)."""
    import waitress
    from flask_migrate import upgrade

    from wishnotes import database, tasks

    app = current_app._get_current_object()
    if app.config["ENV"] == "development" and not os.environ.get("WISHNOTES_BASE_URL"):
        # Links in emails lead where this server really listens, whatever the port.
        app.config["BASE_URL"] = f"http://{host}:{port}"
    if database.is_sqlite(app.config["SQLALCHEMY_DATABASE_URI"]):
        # The embedded default keeps itself up to date; PostgreSQL deployments run `db upgrade`.
        upgrade()
        _check_pepper(app)  # a new database has its pepper check only now
    configure_logging(app)
    consumer = None
    if tasks.is_embedded(app):
        # One command, a working app with emails: the job consumer runs in this process.
        consumer = tasks.start_embedded_consumer(app)
        click.echo("Background jobs (emails) run in this process.")
    click.echo(where_emails_go(app.config))
    click.echo(f"Wishnotes on http://{host}:{port}/ ({app.config['ENV']})")
    try:
        waitress.serve(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="wishnotes",
            **proxy_settings(app.config["PROXY_HOPS"], trusted_proxy=trusted_proxy),
        )
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)


PROXY_HEADERS = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port"}
)


def proxy_settings(hops: int, *, trusted_proxy: str) -> dict:
    """Return waitress's trusted-proxy settings for `hops` reverse proxies (none for 0).

    waitress drops X-Forwarded-* from a peer it does not trust before the app sees them, so
    without these the app's ProxyFix never runs: no request would count as HTTPS and every
    client would share the proxy's address (and its rate limits).
    """
    if hops <= 0:
        return {}
    return {
        "trusted_proxy": trusted_proxy,
        "trusted_proxy_count": hops,
        "trusted_proxy_headers": PROXY_HEADERS,
        "clear_untrusted_proxy_headers": True,
    }


def _check_pepper(app) -> None:
    from wishnotes import server_secrets
    from wishnotes.errors import WishnotesError
    from wishnotes.extensions import db

    try:
        server_secrets.check_pepper(db.engine, pepper=app.config["PEPPER_BYTES"])
    except WishnotesError as exc:
        raise click.ClickException(exc.message) from None


def configure_logging(app) -> None:
    """Log to standard error at LOG_LEVEL; SQL statements (values hidden) only at DEBUG.

    `force`: the migrations' logging setup, which `serve` runs first, would otherwise keep
    everything below WARNING out of the server's log.
    """
    import logging

    level = logging.getLevelName(app.config["LOG_LEVEL"])
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s", force=True)
    sql_level = logging.INFO if level == logging.DEBUG else logging.WARNING
    logging.getLogger("sqlalchemy.engine").setLevel(sql_level)


def where_emails_go(config) -> str:
    """Say where emails are delivered, with a warning when nothing listens there yet."""
    import socket

    if config.get("MAIL_FOLDER"):
        return f"Emails are written to {config['MAIL_FOLDER']} (one .eml file each)."
    host, port = config["SMTP_HOST"], int(config["SMTP_PORT"])
    said = f"Emails go to the SMTP server at {host}:{port}."
    try:
        with socket.create_connection((host, port), timeout=1):
            return said
    except OSError:
        return (
            f"{said} Warning: nothing answers there yet; emails wait in the outbox and are "
            "retried until it does."
        )


@click.command("worker")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker threads [HUEY_WORKERS].")
@click.option("--no-periodic", is_flag=True, help="Leave the minute schedule to another worker.")
@with_appcontext
def worker(workers: int | None, no_periodic: bool) -> None:
    """Run the background jobs (email delivery and schedule) until Ctrl-C."""
    from wishnotes import tasks

    app = current_app._get_current_object()
    if app.config["HUEY_IMMEDIATE"]:
        raise click.ClickException("HUEY_IMMEDIATE is on: jobs run where they are queued.")
    configure_logging(app)
    click.echo(where_emails_go(app.config))
    tasks.run_worker(app, workers=workers, periodic=not no_periodic)


@click.group("emails")
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
    from wishnotes import tasks

    result = tasks.run_due(now=_moment(moment))
    click.echo(
        f"Sent {result.sent} emails ({result.queued} newly due, {result.retried} to retry "
        f"later, {result.failed} given up, {result.skipped} no longer needed)."
    )
    if result.relay_retry_at is not None:
        why = f"refused the session ({result.relay_refused})" if result.relay_refused else "waits"
        click.echo(
            f"The SMTP relay {why}; no email was counted or given up. Next try at "
            f"{result.relay_retry_at.isoformat(timespec='seconds')}."
        )


@click.command("housekeeping")
@click.option("--now", "moment", help="Act as if it were this ISO-8601 time (default: now).")
@with_appcontext
def housekeeping_command(moment: str | None) -> None:
    """Delete expired sessions, logins, invites and reset links once (for cron); print counts."""
    from wishnotes import housekeeping

    report = housekeeping.run(now=_moment(moment), config=current_app.config)
    click.echo(report.summary())


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace PATH if it exists.")
@with_appcontext
def backup_command(path: Path, overwrite: bool) -> None:
    """Write a consistent backup of the database to PATH, while the app runs."""
    from wishnotes import backup

    try:
        made = backup.backup(
            database_url=current_app.config["SQLALCHEMY_DATABASE_URI"],
            path=path,
            overwrite=overwrite,
        )
    except backup.BackupFailed as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Backed up the database to {made.path} ({made.size:,} bytes; {made.method}).")
    click.echo(
        "Keep WISHNOTES_PEPPER and WISHNOTES_SECRET_KEY safe, apart from it: without the "
        "pepper this backup opens nothing."
    )
