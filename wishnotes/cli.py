"""The `wishnotes` command: serve, worker, db, emails, demo, bench and two Flask helpers.

Help must print at once, so the group names its commands and their one-line descriptions here
and imports a command's module only when that command runs (the app, SQLAlchemy, the crypto
and Playwright take seconds to import). Flask's own options and the commands extensions add
to `app.cli` (such as Flask-Limiter's) are not part of this command.
"""

from __future__ import annotations

import importlib

import click

# name -> ("module:attribute" of the click command, the one line `--help` shows).
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("wishnotes.commands:serve", "Serve the app (and, on SQLite, its emails)."),
    "worker": ("wishnotes.commands:worker", "Run the background jobs until Ctrl-C."),
    "db": ("flask_migrate.cli:db", "Apply or inspect the database migrations."),
    "emails": ("wishnotes.commands:emails", "Email jobs for operators and cron."),
    "housekeeping": (
        "wishnotes.commands:housekeeping_command",
        "Delete expired sessions, logins, invites and reset links once.",
    ),
    "backup": ("wishnotes.commands:backup_command", "Write a consistent backup of the database."),
    "demo": ("wishnotes.demo:demo", "Create a demo pair to try the app alone (development)."),
    "bench": ("wishnotes.bench:bench", "Measure throughput and cost on this machine."),
    "routes": ("flask.cli:routes_command", "List the app's routes."),
    "shell": ("flask.cli:shell_command", "Open a Python shell inside the app."),
}


class LazyGroup(click.Group):
    """A group that lists commands from COMMANDS and imports one only to run it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, _, attribute = COMMANDS[cmd_name][0].partition(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, line) for name, (_, line) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows, col_spacing=3)


def _script_info(ctx: click.Context) -> None:
    """Give commands that use Flask's `with_appcontext` the app factory to load."""
    from flask.cli import ScriptInfo

    if not isinstance(ctx.obj, ScriptInfo):  # the test runner brings its own
        ctx.obj = ScriptInfo(create_app=_create_app, set_debug_flag=False)


def _create_app():
    from wishnotes import create_app
    from wishnotes.errors import WishnotesError

    try:
        return create_app()
    except WishnotesError as exc:  # a refusal to start (a secret missing or wrong): its words
        raise click.ClickException(exc.message) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    package_name="wishnotes", prog_name="wishnotes", message="%(prog)s %(version)s"
)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Wishnotes: a private messenger of wishes for two partners."""
    _script_info(ctx)


if __name__ == "__main__":
    main()
