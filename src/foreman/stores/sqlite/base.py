"""The base of the SQLite stores: one connection per store, guarded by a lock, and every
statement on a worker thread (`asyncio.to_thread`), so the event loop never waits on the
disk."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar

from foreman.stores.sqlite.db import open_database
from foreman.stores.sqlite.schema import STEPS

T = TypeVar("T")


class SqliteStore:
    """Base of the SQLite stores: one connection, one lock, work on worker threads."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Wrap a connection `open_database` returned; prefer `await Store.open(path)`."""
        self._conn = conn
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open_now(cls, db_path: str | Path) -> Self:
        """Open and migrate on this thread: for start-up, before anything is served."""
        return cls(open_database(db_path, STEPS))

    @classmethod
    async def open(cls, db_path: str | Path) -> Self:
        """Open `db_path` (migrating it) on a worker thread. Raises ConfigError naming
        `storage.db_path` when the file cannot be used."""
        return cls(await asyncio.to_thread(open_database, db_path, STEPS))

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(conn, *args)` on a worker thread, holding this store's lock."""
        return await asyncio.to_thread(self._locked, work, *args)

    def _locked(self, work: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            return work(self._conn, *args)

    async def aclose(self) -> None:
        """Close the connection once the work already handed over has finished."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
