"""Alembic migrations build the same schema as the models, on SQLite and PostgreSQL."""

import uuid
from datetime import datetime

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


def test_upgrading_withdraws_invites_that_carry_no_mac(tmp_path, empty_database_url):
    """Open invites from before 0003 could never be checked by a joiner: they are withdrawn."""
    app = make_app(tmp_path, None, SQLALCHEMY_DATABASE_URI=empty_database_url)
    with app.app_context():
        upgrade(revision="0004")
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO users (id, email, display_name, created_at,"
                    " kdf_salt, kdf_memory_kib, kdf_iterations, kdf_lanes, auth_digest,"
                    " uk_by_password, uk_by_recovery, private_keys, hpke_public, sign_public,"
                    " key_id) VALUES (1, 'ada@example.com', 'Ada', :t, :b, 19456, 2, 1, :b,"
                    " :b, :b, :b, :b, :b, '0000000000000000')"
                ),
                {"t": datetime(2026, 1, 1), "b": b"\x00"},
            )
            for token_hash, used in ((b"\x01" * 32, None), (b"\x02" * 32, datetime(2026, 1, 2))):
                connection.execute(
                    sa.text(
                        "INSERT INTO invites (inviter_id, token_hash, created_at, expires_at,"
                        " used_at) VALUES (1, :h, :t, :e, :u)"
                    ),
                    {
                        "h": token_hash,
                        "t": datetime(2026, 1, 1),
                        "e": datetime(2099, 1, 1),
                        "u": used,
                    },
                )
        upgrade()
        with db.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT used_at, revoked_at FROM invites ORDER BY id")
            ).all()
        db.engine.dispose()
    (open_used, open_revoked), (used_used, used_revoked) = rows
    assert open_used is None and open_revoked is not None
    assert used_used is not None and used_revoked is None  # a used invite is history, untouched
