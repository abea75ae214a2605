"""Persistent record of phone calls (SQLite, beside the audit log): survives restarts.

Writes happen on worker threads; the caller's event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from foreman.history.db import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_sid   TEXT PRIMARY KEY,
    direction  TEXT NOT NULL,
    from_num   TEXT NOT NULL,
    to_num     TEXT NOT NULL,
    role       TEXT NOT NULL,
    verified   INTEGER NOT NULL,
    started_at REAL NOT NULL,
    ended_at   REAL NOT NULL,
    reason     TEXT NOT NULL,
    purpose    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS calls_ended_at ON calls (ended_at);
"""
_COLUMNS = (
    "call_sid",
    "direction",
    "from",
    "to",
    "role",
    "verified",
    "started_at",
    "ended_at",
    "reason",
    "purpose",
)


class CallLog:
    def __init__(self, db_path: str | Path) -> None:
        self._conn = connect(db_path)
        self._lock = threading.Lock()
        self._conn.executescript(_SCHEMA)

    def record_sync(self, rec: Mapping[str, Any]) -> None:
        """Insert or replace one call (keyed by CallSid). `rec` uses CallRecord.to_dict keys."""
        row = tuple(rec.get(c, "") for c in _COLUMNS)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO calls (call_sid, direction, from_num, to_num, role, "
                "verified, started_at, ended_at, reason, purpose) VALUES (?,?,?,?,?,?,?,?,?,?)",
                row,
            )

    def recent_sync(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest `limit` calls, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM calls ORDER BY ended_at DESC LIMIT ?", (limit,)
            ).fetchall()
        out = []
        for r in reversed(rows):
            d = dict(r)
            d["from"], d["to"] = d.pop("from_num"), d.pop("to_num")
            d["verified"] = bool(d["verified"])
            out.append(d)
        return out

    async def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.recent_sync, limit)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
