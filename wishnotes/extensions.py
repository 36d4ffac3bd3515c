"""Extension objects, created unbound and bound to the app in `create_app`."""

from __future__ import annotations

import functools
from pathlib import Path

import redis
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from huey import Huey
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from wishnotes.web.security import OriginCheckingCSRF


class Base(DeclarativeBase):
    # Named constraints so Alembic migrations are identical on SQLite and PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = OriginCheckingCSRF()
limiter = Limiter(key_func=get_remote_address)


# Seconds before a Redis that does not answer is given up, for the job queue.
REDIS_CONNECT_TIMEOUT, REDIS_TIMEOUT = 2, 5


class FlaskHuey(Huey):
    """A huey queue bound to the app in the factory, the way the Flask extensions above are.

    huey has no `init_app`: a queue is normally built with its storage at import. This one is
    built unbound (in memory, touching no disk or network), so tasks can be declared at import
    with `@huey.app_task()`; `init_app` then picks the storage from the app's config (SQLite in
    the instance folder by default, Redis when REDIS_URL is set, memory when HUEY_IMMEDIATE)
    and remembers the app, so each task runs inside an app context wherever a consumer runs it.
    One process serves one app at a time: binding another app (tests do) rebinds the queue.
    """

    def __init__(self) -> None:
        # results=False: nothing reads a job's return value, so none is kept in the queue.
        super().__init__("wishnotes", results=False, storage_class=MemoryStorage)
        self.flask_app: Flask | None = None

    def init_app(self, app: Flask) -> None:
        """Choose the storage for `app` and remember the app for the task wrapper."""
        config = app.config
        self.name = config["HUEY_NAME"]
        if config["HUEY_IMMEDIATE"]:
            self.storage_class, self.storage_kwargs = MemoryStorage, {}
        elif config.get("REDIS_URL"):
            # A Redis that hangs is given up (the request goes on; the sweep delivers) rather
            # than holding a page forever; the timeout is above the consumer's 1 s blocking read.
            pool = redis.ConnectionPool.from_url(
                config["REDIS_URL"],
                socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
                socket_timeout=REDIS_TIMEOUT,
            )
            self.storage_class, self.storage_kwargs = RedisStorage, {"connection_pool": pool}
        else:
            filename = str(Path(app.instance_path) / "huey.sqlite3")
            self.storage_class, self.storage_kwargs = SqliteStorage, {"filename": filename}
        self._immediate = bool(config["HUEY_IMMEDIATE"])
        self.storage.close()  # the previous app's queue, if any: no handle left open
        self.storage = self.create_storage()
        self.flask_app = app
        app.extensions["huey"] = self

    def app_task(self, **settings):
        """Declare a task that runs inside an app context of the bound app."""
        return lambda fn: self.task(**settings)(self._in_app_context(fn))

    def app_periodic_task(self, validate_datetime, **settings):
        """Declare a periodic task that runs inside an app context of the bound app."""
        return lambda fn: self.periodic_task(validate_datetime, **settings)(
            self._in_app_context(fn)
        )

    def _in_app_context(self, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            if self.flask_app is None:
                raise RuntimeError("huey is not bound to an app; call create_app() first")
            with self.flask_app.app_context():
                return fn(*args, **kwargs)

        return run


huey = FlaskHuey()
