"""The `wishnotes` command: serve, worker, db, bench and the usual Flask helpers."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext

from wishnotes import create_app, database


def _create_app():
    return create_app()


@click.group(
    cls=FlaskGroup, create_app=_create_app, add_default_commands=False, set_debug_flag=False
)
def main() -> None:
    """Wishnotes: a private messenger of wishes for two partners."""


main.add_command(shell_command)
main.add_command(routes_command)


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
    click.echo(f"Wishnotes on http://{host}:{port}/ ({app.config['ENV']})")
    waitress.serve(app, host=host, port=port, threads=threads, ident="wishnotes")


if __name__ == "__main__":
    main()
