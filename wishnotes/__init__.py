"""Wishnotes: a private messenger of wishes for two partners."""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Flask is imported when an app is made, so `wishnotes --help` stays instant
    from flask import Flask

PACKAGE = Path(__file__).resolve().parent


def _installed_or_source(inside: str, outside: str) -> Path:
    """A wheel carries `templates/` and `config.py` inside the package; a checkout at its top."""
    return next(p for p in (PACKAGE / inside, PACKAGE.parent / outside) if p.exists())


def _load_config_module() -> ModuleType:
    path = _installed_or_source("_config/config.py", "config.py")
    spec = importlib.util.spec_from_file_location("wishnotes._config.config", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TEMPLATES = _installed_or_source("templates", "templates")
app_config = _load_config_module()


def create_app(config: Mapping[str, Any] | None = None, **overrides: Any) -> Flask:
    """Build the app from WISHNOTES_* variables, then `config`, then keyword overrides."""
    from flask import Flask

    settings = _settings(config, overrides)
    app = Flask(
        __name__,
        instance_path=settings.pop("INSTANCE_PATH", None),
        template_folder=str(TEMPLATES),
    )
    app.config.from_mapping(settings)
    # The instance folder holds the database and the development secrets: owner-only.
    Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)
    register_logging(app)
    register_secrets(app)
    register_crypto(app)
    register_database(app)
    register_security(app)  # first, so its request checks run before any extension reads the form
    register_extensions(app)
    register_pepper_check(app)
    register_jobs(app)
    register_blueprints(app)
    register_errorhandlers(app)
    return app


def _settings(config: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    given = {**(config or {}), **overrides}
    env = given.get("ENV") or ("testing" if given.get("TESTING") else None)
    settings = app_config.load(env=env)
    settings.update(given)
    return settings


def register_logging(app: Flask) -> None:
    """Log at the configured level, one line per request; bodies and paths are never logged."""
    from wishnotes.web import access_log

    app.logger.setLevel(app.config["LOG_LEVEL"])
    logging.getLogger("waitress").setLevel(app.config["LOG_LEVEL"])
    logging.getLogger("wishnotes").setLevel(app.config["LOG_LEVEL"])
    access_log.init_app(app)


def register_secrets(app: Flask) -> None:
    """Take SECRET_KEY and PEPPER from the environment, or outside production the instance."""
    from wishnotes import server_secrets

    values = server_secrets.resolve(app.config, instance_path=Path(app.instance_path))
    app.config.update(values)
    app.config["PEPPER_BYTES"] = values["PEPPER"].encode("utf-8")


@functools.cache
def _crypto_self_test() -> None:
    from wishnotes import crypto

    crypto.self_test()


def register_crypto(app: Flask) -> None:
    """Refuse to start without Argon2id and HPKE; set up the login KDF and its machine budget."""
    from wishnotes import crypto, kdf

    _crypto_self_test()
    config = app.config
    params = crypto.KdfParams(
        memory_kib=config["KDF_MEMORY_KIB"],
        iterations=config["KDF_ITERATIONS"],
        lanes=config["KDF_LANES"],
    )
    budget = kdf.budget(
        cores=config["KDF_CONCURRENCY"] or kdf.usable_cores(),
        memory_mib=config["KDF_MEMORY_MIB"],
        params=params,
    )
    app.extensions["wishnotes.kdf"] = kdf.KdfRunner(
        pepper=config["PEPPER_BYTES"],
        params=params,
        max_concurrent=budget.slots,
        slots_dir=Path(config["KDF_SLOTS_DIR"] or Path(app.instance_path) / "kdf-slots"),
        queue=config["KDF_QUEUE"],
        wait=config["KDF_WAIT"],
        retry_after=config["KDF_RETRY_AFTER"],
    )


def register_database(app: Flask) -> None:
    """Default to a SQLite file in the instance folder; use psycopg 3 for PostgreSQL URLs."""
    from wishnotes import database

    app.config["SQLALCHEMY_DATABASE_URI"] = url = database.normalize_url(
        app.config.get("SQLALCHEMY_DATABASE_URI"), instance_path=Path(app.instance_path)
    )
    if not app.config["DATABASE_PREPARED_STATEMENTS"] and not database.is_sqlite(url):
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])  # a copy: the default is shared
        options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def register_extensions(app: Flask) -> None:
    """Bind the extension objects created in extensions.py."""
    from wishnotes import database, i18n
    from wishnotes.extensions import csrf, db, limiter, login_manager, migrate
    from wishnotes.web import logins

    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        # Redis unreachable: count in this process instead (logged once), never a 500; a
        # Redis that hangs is given up quickly. Flask-Limiter goes back to Redis once it answers.
        app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 2, "socket_timeout": 2}
        )
    db.init_app(app)
    app.before_request(database.keep_objects_after_commit)
    # A request's teardown runs before the app context's, where the session is removed.
    app.teardown_request(database.commit_what_only_read)
    with app.app_context():
        database.configure_engine(db.engine, ping_after=lambda: app.config["DATABASE_PING_AFTER"])
    migrate.init_app(
        app,
        db,
        directory=str(Path(__file__).parent / "migrations"),
        render_item=database.render_migration_item,
        compare_type=True,
    )
    csrf.init_app(app)
    i18n.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = i18n._l("Please sign in to continue.")
    login_manager.session_protection = "basic"
    login_manager.user_loader(logins.load_user)


def register_pepper_check(app: Flask) -> None:
    """Refuse to start with a pepper other than the one the database was created with."""
    from wishnotes import server_secrets
    from wishnotes.extensions import db

    with app.app_context():
        server_secrets.check_pepper(db.engine, pepper=app.config["PEPPER_BYTES"])


def register_security(app: Flask) -> None:
    """Security headers, proxy handling and request checks shared by every page."""
    from wishnotes.web import security

    security.init_app(app)


def register_jobs(app: Flask) -> None:
    """Bind the huey queue (SQLite in the instance, or Redis) and check the email settings."""
    from wishnotes import mail, tasks

    mail.SmtpTransport.from_config(app.config)  # refuses an unknown SMTP_SECURITY
    folder = mail.mail_folder(app.config, instance_path=Path(app.instance_path))
    app.config["MAIL_FOLDER"] = str(folder) if folder else None
    mail.check_timeouts(app.config)
    if app.config.get("BASE_URL") or app.config["ENV"] == "production":
        # Refuses a missing or malformed address, and plain http in production: emails need it.
        mail.base_url(app.config)
    tasks.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Attach the web blueprints."""
    from wishnotes.web import (
        account,
        agreements,
        appearance,
        auth,
        emails,
        idle,
        language,
        localtime,
        logins,
        main,
        notes,
        pairing,
        places,
        program,
        pwa,
        recovery,
        reset,
        rituals,
        settings,
        shell,
        support,
        together,
        wishes,
    )

    blueprints = (
        (main, auth, logins, recovery, reset, pairing, settings, support),  # accounts and pairing
        (notes, account, wishes),  # notes, the key lifecycle and the practices around them
        (program, emails),  # the week and its emails
        (together, rituals, places, agreements),  # the practices around the notes
        (shell, pwa, idle, appearance, localtime, language),  # the interface around every page
    )
    for group in blueprints:
        for module in group:
            app.register_blueprint(module.bp)


def register_errorhandlers(app: Flask) -> None:
    """Calm error pages that reveal nothing about the server."""
    from wishnotes.web import errors

    errors.init_app(app)
