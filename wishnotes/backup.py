"""Backups of the database while the app runs: a consistent copy in one file.

SQLite: the online backup API copies the database as of one moment, through the write-ahead
log (a plain copy of the file misses the notes still in `-wal`), into a single self-contained
file. PostgreSQL: `pg_dump` in its custom format without owners, restored with `pg_restore`.

A backup holds only sealed notes and wrapped keys: it opens nothing without WISHNOTES_PEPPER,
which is never in the database and must be kept beside it (README, "Backups and restore").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from wishnotes.errors import WishnotesError


class BackupFailed(WishnotesError):
    """The backup could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    method: str


def backup(*, database_url: str, path: Path, overwrite: bool = False) -> Backup:
    """Write a consistent backup of the database at `database_url` to `path` (mode 0600)."""
    if path.exists() and not overwrite:
        raise BackupFailed(f"{path} exists already; choose a new name (or --overwrite).")
    if not path.parent.is_dir():
        raise BackupFailed(f"The folder {path.parent} does not exist.")
    url = make_url(database_url)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    # Owner-only from the first byte: a backup is the whole database.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        if url.get_backend_name() == "sqlite":
            method = _sqlite(Path(url.database or ""), partial)
        elif url.get_backend_name() == "postgresql":
            method = _postgres(url, partial)
        else:
            raise BackupFailed(f"No backup method for {url.get_backend_name()} databases.")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(path=path, size=path.stat().st_size, method=method)


def _sqlite(source: Path, target: Path) -> str:
    if not source.is_file():
        raise BackupFailed(f"There is no database at {source}.")
    with (
        closing(sqlite3.connect(source, timeout=30)) as live,
        closing(sqlite3.connect(target)) as copy,
    ):
        # One step: in WAL mode the copy reads a snapshot while the app keeps writing.
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal beside it
        verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
    if verdict != "ok":
        raise BackupFailed(f"The copy failed its integrity check: {verdict}")
    return "SQLite online backup"


def _postgres(url, target: Path) -> str:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupFailed(
            "pg_dump is not on PATH. Install the PostgreSQL client tools of the server's major "
            "version (e.g. apt-get install postgresql-client), or run on a host that has them: "
            "pg_dump --format=custom --no-owner --file PATH <database>"
        )
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # never on the command line, which others can see
    dbname = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    command = [pg_dump, "--format=custom", "--no-owner", "--file", str(target), "--dbname", dbname]
    result = subprocess.run(  # noqa: S603 - a fixed program and our own arguments
        command, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupFailed(f"pg_dump failed: {result.stderr.strip()[:500]}")
    return "pg_dump, custom format"
