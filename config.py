"""Configuration read from WISHNOTES_* environment variables.

`load()` returns a plain dict for `app.config`. Secrets have no default: production refuses to start
without them, development and tests generate them once into the instance folder (see
`wishnotes.secrets`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

PREFIX = "WISHNOTES_"
ENVIRONMENTS = ("development", "production", "testing")


class BaseConfig:
    """Settings shared by every environment."""

    ENV = "development"
    TESTING = False
    DEBUG = False

    # Secrets: None means "take from the environment or, outside production, the instance folder".
    SECRET_KEY: str | None = None
    PEPPER: str | None = None

    SQLALCHEMY_DATABASE_URI: str | None = None  # None: SQLite file in the instance folder
    # hide_parameters: SQL errors in the log never carry the values that were bound.
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"hide_parameters": True}
    # Seconds a pooled connection may sit unused before it is pinged at its next use (a ping
    # on every use would cost a round trip per request; see wishnotes.database).
    DATABASE_PING_AFTER = 10.0
    # False behind PgBouncer in transaction pooling (older than 1.21): psycopg then never
    # prepares statements on the server (prepare_threshold=None).
    DATABASE_PREPARED_STATEMENTS = True
    REDIS_URL: str | None = None

    # Web security.
    MAX_CONTENT_LENGTH = 256 * 1024
    MAX_FORM_MEMORY_SIZE = 256 * 1024
    SESSION_COOKIE_NAME = "wn_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_NAME = "wn_remember"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION = timedelta(days=30)  # a remembered login unused this long ends
    LOGIN_IDLE = timedelta(days=7)  # a login without "keep me signed in" unused this long ends
    PERMANENT_SESSION_LIFETIME = timedelta(days=30)
    WTF_CSRF_TIME_LIMIT = 4 * 3600
    # Browsers send no Referer under our `no-referrer` policy; the origin is checked from
    # Sec-Fetch-Site / Origin instead (wishnotes.web.security.OriginCheckingCSRF).
    WTF_CSRF_SSL_STRICT = False
    PROXY_HOPS = 0  # how many reverse proxies to trust for the client address (ProxyFix)

    # Keys and sessions (DESIGN §4).
    KDF_MEMORY_KIB = 65536
    KDF_ITERATIONS = 3
    KDF_LANES = 1
    # The machine-wide budget (wishnotes.kdf): Argon2id runs at once on this host, across all
    # its worker processes = min(cores, KDF_MEMORY_MIB // memory of one run), at least 1.
    KDF_CONCURRENCY: int | None = None  # cores to use; None: the cores this process may use
    KDF_MEMORY_MIB = 1024
    KDF_SLOTS_DIR: str | None = None  # shared by the host's workers; None: instance/kdf-slots
    KDF_QUEUE = 2  # sign-ins one process lets wait or run at once; more are told "busy"
    KDF_WAIT = 5.0  # seconds a sign-in waits for a slot before "busy, try again"
    KDF_RETRY_AFTER = 3  # the Retry-After of that answer, in seconds
    KEY_SESSION_IDLE = timedelta(minutes=30)
    KEY_SESSION_ABSOLUTE = timedelta(hours=12)

    # Rate limits (Flask-Limiter notation).
    RATELIMIT_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = False
    LOGIN_LIMIT_PER_ADDRESS = "20 per minute; 200 per day"
    LOGIN_LIMIT_PER_ACCOUNT = "6 per minute; 40 per day"
    REGISTER_LIMIT_PER_ADDRESS = "10 per hour"
    RECOVERY_LIMIT_PER_ADDRESS = "10 per hour"

    # Email.
    BASE_URL: str | None = None  # e.g. https://wishnotes.example; links in emails need it
    MAIL_FROM = "Notes <no-reply@localhost>"  # neutral: the sender shows in every inbox
    SMTP_HOST = "127.0.0.1"
    SMTP_PORT = 25
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_SECURITY = "none"  # none | starttls | tls
    SMTP_TIMEOUT = 10.0  # seconds, for connecting and for each command
    # Seconds to wait for the reply to the end of a message: long, because a relay that stores
    # a message and answers after we gave up gets it twice. Must stay well under EMAIL_LEASE.
    SMTP_DATA_TIMEOUT = 300.0
    # A folder (relative to the instance) to write emails into instead of sending them.
    MAIL_FOLDER: str | None = None

    # Background jobs and the email outbox (wishnotes.tasks, wishnotes.outbox, wishnotes.schedule).
    HUEY_NAME = "wishnotes"
    HUEY_IMMEDIATE = False  # run tasks in the calling thread (in memory); no consumer needed
    HUEY_WORKERS = 2  # consumer threads of `wishnotes worker` and of the one inside `serve`
    EMAIL_BATCH_SIZE = 100  # outbox rows one delivery task takes before handing on
    EMAIL_MAX_ATTEMPTS = 5  # permanent (5xx) refusals of one email before it is given up
    EMAIL_BACKOFF_BASE = timedelta(minutes=1)  # first retry delay; doubles each try
    EMAIL_BACKOFF_MAX = timedelta(hours=1)
    EMAIL_GIVE_UP_AFTER = timedelta(days=3)  # temporary failures are retried this long
    EMAIL_LEASE = timedelta(minutes=10)  # a claimed row is retried after this if not recorded
    SCHEDULE_BATCH_SIZE = 2000  # users loaded, rendered and queued per transaction
    SCHEDULE_CATCHUP = timedelta(hours=6)  # how far back a pass looks after missed passes
    NOTE_NOTICE_INTERVAL = timedelta(hours=6)  # at most one "a note is waiting" per interval
    NOTE_NOTICE_DELAY = timedelta(minutes=10)  # no notice if the note is opened before this
    OUTBOX_RETENTION = timedelta(days=7)  # finished emails keep their bodies this long
    MAIL_TRANSPORT = None  # tests: a callable(config) -> transport; None means SMTP from config

    LOG_LEVEL = "INFO"

    # Interface: where the Exit button and Shift pressed three times lead (a neutral site).
    QUICK_EXIT_URL = "https://www.wikipedia.org/"


class DevelopmentConfig(BaseConfig):
    """Local use: SQLite, generated secrets, plain-HTTP cookies on 127.0.0.1."""

    ENV = "development"
    SMTP_PORT = 8025
    MAIL_FOLDER = "mail"  # readable on the first run; set WISHNOTES_SMTP_HOST to send instead
    BASE_URL = "http://127.0.0.1:5000"  # http is allowed outside production only


class ProductionConfig(BaseConfig):
    """Real deployments: secrets must come from the environment; cookies need HTTPS."""

    ENV = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True


class TestingConfig(BaseConfig):
    """The test suite: the KDF at its floor so a test registers users quickly."""

    ENV = "testing"
    TESTING = True
    KDF_MEMORY_KIB = 19456
    KDF_ITERATIONS = 2
    RATELIMIT_ENABLED = False


CLASSES: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}

# Environment variable (without prefix) -> (config key, parser).
_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False}


def _bool(value: str) -> bool:
    try:
        return _BOOL[value.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, got {value!r}") from None


def _days(value: str) -> timedelta:
    try:
        days = float(value)
    except ValueError:
        raise ValueError(f"expected a number of days, got {value!r}") from None
    if not math.isfinite(days) or days < 0:
        raise ValueError(f"expected a number of days, got {value!r}")
    return timedelta(days=days)


ENV_VARS: dict[str, tuple[str, Any]] = {
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str),
    "SECRET_KEY": ("SECRET_KEY", str),
    "PEPPER": ("PEPPER", str),
    "DATABASE_PING_AFTER": ("DATABASE_PING_AFTER", float),
    "DATABASE_PREPARED_STATEMENTS": ("DATABASE_PREPARED_STATEMENTS", _bool),
    "REDIS_URL": ("REDIS_URL", str),
    "BASE_URL": ("BASE_URL", str),
    "MAIL_FROM": ("MAIL_FROM", str),
    "SMTP_HOST": ("SMTP_HOST", str),
    "SMTP_PORT": ("SMTP_PORT", int),
    "SMTP_USERNAME": ("SMTP_USERNAME", str),
    "SMTP_PASSWORD": ("SMTP_PASSWORD", str),
    "SMTP_SECURITY": ("SMTP_SECURITY", str),
    "SMTP_TIMEOUT": ("SMTP_TIMEOUT", float),
    "MAIL_FOLDER": ("MAIL_FOLDER", str),
    "SMTP_DATA_TIMEOUT": ("SMTP_DATA_TIMEOUT", float),
    "HUEY_WORKERS": ("HUEY_WORKERS", int),
    "EMAIL_MAX_ATTEMPTS": ("EMAIL_MAX_ATTEMPTS", int),
    "SCHEDULE_BATCH_SIZE": ("SCHEDULE_BATCH_SIZE", int),
    "OUTBOX_RETENTION_DAYS": ("OUTBOX_RETENTION", _days),
    "PROXY_HOPS": ("PROXY_HOPS", int),
    "KDF_CONCURRENCY": ("KDF_CONCURRENCY", int),
    "KDF_MEMORY_KIB": ("KDF_MEMORY_KIB", int),
    "KDF_ITERATIONS": ("KDF_ITERATIONS", int),
    "KDF_MEMORY_MIB": ("KDF_MEMORY_MIB", int),
    "KDF_SLOTS_DIR": ("KDF_SLOTS_DIR", str),
    "KDF_QUEUE": ("KDF_QUEUE", int),
    "KDF_WAIT": ("KDF_WAIT", float),
    "RATELIMIT_ENABLED": ("RATELIMIT_ENABLED", _bool),
    "LOG_LEVEL": ("LOG_LEVEL", str),
    "QUICK_EXIT_URL": ("QUICK_EXIT_URL", str),
}


class ConfigError(RuntimeError):
    """The environment describes a configuration that cannot run."""


def environment(environ: Mapping[str, str] | None = None) -> str:
    """Return the environment name chosen by WISHNOTES_ENV (default: development)."""
    environ = os.environ if environ is None else environ
    name = environ.get(PREFIX + "ENV", "development").strip().lower()
    if name not in ENVIRONMENTS:
        raise ConfigError(f"{PREFIX}ENV must be one of {', '.join(ENVIRONMENTS)}, not {name!r}")
    return name


def load(environ: Mapping[str, str] | None = None, env: str | None = None) -> dict[str, Any]:
    """Build the config dict for `env` from the class defaults and WISHNOTES_* variables."""
    environ = os.environ if environ is None else environ
    env = env or environment(environ)
    cls = CLASSES[env]
    settings = {key: getattr(cls, key) for key in dir(cls) if key.isupper()}
    for suffix, (key, parse) in ENV_VARS.items():
        raw = environ.get(PREFIX + suffix)
        if raw is None or raw == "":
            continue
        try:
            settings[key] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{PREFIX}{suffix}: {exc}") from None
    if environ.get(PREFIX + "SMTP_HOST") and not environ.get(PREFIX + "MAIL_FOLDER"):
        settings["MAIL_FOLDER"] = None  # an SMTP server was named: send to it
    # None lets Flask pick its usual instance folder (next to the package, or under sys.prefix).
    instance = environ.get(PREFIX + "INSTANCE_PATH")
    settings["INSTANCE_PATH"] = str(Path(instance).resolve()) if instance else None
    return settings
