"""The app factory, configuration and server secrets."""

import json
import os
import stat

import pytest

from wishnotes import app_config, create_app
from wishnotes.errors import MailNotConfigured
from wishnotes.server_secrets import MissingSecret

from .conftest import PEPPER, SECRET_KEY


def test_templates_come_from_the_top_level_folder(app):
    assert app.template_folder.endswith("/templates")
    assert os.path.isfile(os.path.join(app.template_folder, "base.html"))


def test_environment_variables_are_read_with_their_prefix():
    settings = app_config.load(
        {
            "WISHNOTES_ENV": "production",
            "WISHNOTES_DATABASE_URL": "postgresql://db/wishnotes",
            "WISHNOTES_SMTP_PORT": "2525",
            "WISHNOTES_REDIS_URL": "redis://127.0.0.1:6379/0",
            "WISHNOTES_INSTANCE_PATH": "/srv/wishnotes-instance",
        }
    )
    assert settings["ENV"] == "production"
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql://db/wishnotes"
    assert settings["SMTP_PORT"] == 2525
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert settings["INSTANCE_PATH"] == "/srv/wishnotes-instance"
    assert settings["SESSION_COOKIE_SECURE"] is True


def test_unknown_environment_is_refused():
    with pytest.raises(app_config.ConfigError, match="WISHNOTES_ENV"):
        app_config.load({"WISHNOTES_ENV": "staging"})


def test_malformed_number_names_its_variable():
    with pytest.raises(app_config.ConfigError, match="WISHNOTES_SMTP_PORT"):
        app_config.load({"WISHNOTES_SMTP_PORT": "twenty-five"})


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"PEPPER": PEPPER}, "WISHNOTES_SECRET_KEY"),
        ({"SECRET_KEY": SECRET_KEY}, "WISHNOTES_PEPPER"),
    ],
)
def test_production_refuses_to_start_without_a_secret(tmp_path, given, missing):
    with pytest.raises(MissingSecret, match=missing):
        create_app(ENV="production", INSTANCE_PATH=str(tmp_path), **given)
    assert not (tmp_path / "secrets.json").exists()


def test_production_refuses_a_short_secret(tmp_path):
    with pytest.raises(MissingSecret, match="at least 32"):
        create_app(ENV="production", INSTANCE_PATH=str(tmp_path), SECRET_KEY="short", PEPPER=PEPPER)


def test_development_generates_secrets_once_with_private_mode(tmp_path):
    first = create_app(ENV="development", INSTANCE_PATH=str(tmp_path))
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert first.config["SECRET_KEY"] == stored["SECRET_KEY"]
    assert len(stored["PEPPER"]) >= 32 and stored["PEPPER"] != stored["SECRET_KEY"]
    second = create_app(ENV="development", INSTANCE_PATH=str(tmp_path))
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    assert second.config["PEPPER"] == first.config["PEPPER"]


def test_embedded_default_database_is_sqlite_in_the_instance_folder(tmp_path):
    app = create_app(ENV="development", INSTANCE_PATH=str(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/wishnotes.sqlite3"


def test_postgres_urls_use_psycopg3(tmp_path):
    app = create_app(
        ENV="development", INSTANCE_PATH=str(tmp_path), SQLALCHEMY_DATABASE_URI="postgresql://h/db"
    )
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")


def test_production_refuses_to_start_without_a_base_url(tmp_path):
    with pytest.raises(MailNotConfigured, match="WISHNOTES_BASE_URL"):
        create_app(
            ENV="production", INSTANCE_PATH=str(tmp_path), SECRET_KEY=SECRET_KEY, PEPPER=PEPPER
        )


def test_production_cookies_are_secure(tmp_path):
    app = create_app(
        ENV="production",
        INSTANCE_PATH=str(tmp_path),
        SECRET_KEY=SECRET_KEY,
        PEPPER=PEPPER,
        BASE_URL="https://notes.example.org",
    )
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_HTTPONLY"]
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert not app.debug


def test_rate_limits_use_redis_when_configured(tmp_path):
    app = create_app(
        TESTING=True,
        INSTANCE_PATH=str(tmp_path),
        REDIS_URL="redis://127.0.0.1:6379/0",
        SECRET_KEY=SECRET_KEY,
        PEPPER=PEPPER,
    )
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"


def test_kdf_below_the_floor_is_refused(tmp_path):
    with pytest.raises(ValueError, match="floor"):
        create_app(TESTING=True, INSTANCE_PATH=str(tmp_path), KDF_MEMORY_KIB=1024)
