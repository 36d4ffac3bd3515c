"""Alembic migrations build the same schema as the models, on SQLite and PostgreSQL."""

import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from wishnotes.extensions import db

from .conftest import POSTGRES_URL, make_app


@pytest.fixture
def empty_database_url(tmp_path):
    """An empty database: a new SQLite file, or a new database on the PostgreSQL server."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    url = sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    name = f"wishnotes_mig_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _diff(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_migrations_from_empty_match_the_models(tmp_path, empty_database_url):
    app = make_app(tmp_path, None, SQLALCHEMY_DATABASE_URI=empty_database_url)
    with app.app_context():
        upgrade()
        tables = set(sa.inspect(db.engine).get_table_names())
    assert {"users", "pairs", "invites", "key_sessions", "alembic_version"} <= tables
    assert _diff(app) == []
    with app.app_context():
        db.engine.dispose()


def test_migrations_downgrade_to_empty_and_up_again(tmp_path, empty_database_url):
    app = make_app(tmp_path, None, SQLALCHEMY_DATABASE_URI=empty_database_url)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        db.engine.dispose()
    assert _diff(app) == []
