"""Opening the embedded database, migrating its schema, and running work off the loop.

One database file (`[storage] db_path`) holds every embedded store's tables, in WAL mode so
readers run beside the single writer. Everything here blocks: the stores call it on worker
threads (`foreman.stores.sqlite.base`).

Migrations: `PRAGMA user_version` counts the steps applied
(https://www.sqlite.org/pragma.html#pragma_user_version). `migrate` applies the missing
steps in order, each in its own transaction together with the new version number, so a
crash mid-way leaves the database at the last whole step.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from foreman.exceptions import ConfigError

MigrationStep = Callable[[sqlite3.Connection], None]

CONFIG_KEY = "storage.db_path"
BUSY_TIMEOUT_MS = 5000
# SQLite's page cache, per connection (https://www.sqlite.org/pragma.html#pragma_cache_size).
# Its default, 2 MB, fills when history is read back and stays until another connection
# writes (in WAL mode that drops the cache): with one connection per store, up to 12 MB.
# The stores append and look rows up by key, touching few pages, and a page SQLite does not
# hold is one read from the kernel's file cache: no CPU per call measured
# (`bench/soak_sqlite.py`).
CACHE_KIB = 256


def open_database(db_path: str | Path, steps: Sequence[MigrationStep]) -> sqlite3.Connection:
    """Open (creating folders and file) and migrate; blocking, so call it on a worker
    thread. Raises ConfigError naming `storage.db_path` when the file cannot be used."""
    where = str(db_path)
    try:
        conn = connect(db_path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"{CONFIG_KEY}: cannot open {where}: {_one_line(exc)}") from None
    try:
        migrate(conn, steps)
    except ConfigError:
        conn.close()
        raise
    except (OSError, sqlite3.Error) as exc:
        conn.close()
        raise ConfigError(f"{CONFIG_KEY}: cannot use {where}: {_one_line(exc)}") from None
    return conn


def connect(db_path: str | Path) -> sqlite3.Connection:
    """Open (creating folders and the file) in WAL mode with a page cache of `CACHE_KIB`,
    without migrating; blocking. Raises OSError or sqlite3.Error when the path cannot be used."""
    target: str | Path = db_path
    if str(db_path) != ":memory:":
        target = Path(db_path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # negative: KiB, not pages
        _enable_wal(conn)  # also the first read: a file that is not a database fails here
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite answers BUSY at once
    # (without waiting on busy_timeout) when another connection switches it at the same
    # moment: two processes starting together. Retry for as long as busy_timeout would wait.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def migrate(conn: sqlite3.Connection, steps: Sequence[MigrationStep]) -> int:
    """Apply `steps[user_version:]`, one transaction per step; returns the new version.
    `conn` must be in autocommit mode (`isolation_level=None`, as `open_database` opens it).
    Safe to run from several connections at once: the version is re-read under the write
    lock. Raises ConfigError when the file was written by a newer schema."""
    while True:
        with transaction(conn):
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(steps):
                raise ConfigError(
                    f"{CONFIG_KEY}: the database has schema version {version}, newer than "
                    f"this Foreman knows ({len(steps)}); upgrade Foreman or use another file"
                )
            if version == len(steps):
                return version
            steps[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction (`BEGIN IMMEDIATE`: takes the write lock up front, so two writers
    never deadlock upgrading read locks); rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
