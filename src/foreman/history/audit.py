"""The persistent audit log of tool decisions (SQLite, survives restarts).

One row per tool call the model made: when, which session and caller, the tool and its
arguments, the decision (allow / deny / invalid / approved / denied / expired / cancelled),
the reason, who approved, how long the approval took and what came of it. Arguments are the
model's own (it never sees our secrets), so they are stored as given.

Writes happen in a worker thread (`asyncio.to_thread`) behind a lock, never on the loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from foreman.history.db import connect
from foreman.stores.records import AuditRecord

__all__ = ["AuditLog", "AuditRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    session_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    role TEXT NOT NULL,
    channel TEXT NOT NULL,
    tool TEXT NOT NULL,
    call_id TEXT NOT NULL,
    arguments TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    approver TEXT,
    approval_id TEXT,
    wait_s REAL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tool_audit_at ON tool_audit (at);
"""


class AuditLog:
    def __init__(self, db_path: str | Path) -> None:
        self._conn = connect(db_path)
        self._lock = threading.Lock()
        self._conn.executescript(_SCHEMA)

    def record_sync(self, rec: AuditRecord) -> int:
        row = asdict(rec)
        row["arguments"] = json.dumps(rec.arguments, ensure_ascii=False, default=str)
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._lock:
            cur = self._conn.execute(f"INSERT INTO tool_audit ({cols}) VALUES ({marks})", row)
            return int(cur.lastrowid or 0)

    async def record(self, rec: AuditRecord) -> int:
        """Append one row off the event loop; returns its id."""
        return await asyncio.to_thread(self.record_sync, rec)

    def query_sync(self, limit: int = 100, session_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM tool_audit"
        params: list[Any] = []
        if session_id is not None:
            sql += " WHERE session_id = ?"
            params.append(session_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(0, int(limit)))
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["arguments"] = json.loads(d["arguments"])
            out.append(d)
        return out

    async def query(self, limit: int = 100, session_id: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        return await asyncio.to_thread(self.query_sync, limit, session_id)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
