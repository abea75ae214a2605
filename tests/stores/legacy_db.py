"""A database as the first released version of Foreman wrote it (schema version 0: the
`tool_audit` and `calls` tables, no `user_version`), for migration tests. The statements
are the ones that version ran."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from foreman.stores import AuditRecord

SCHEMA_V0 = """
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


class LegacyDatabase:
    """Writes and reads rows the way that version did."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA_V0)

    def add_audit(self, rec: AuditRecord) -> None:
        row = asdict(rec)
        row["arguments"] = json.dumps(rec.arguments, ensure_ascii=False, default=str)
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        self.conn.execute(f"INSERT INTO tool_audit ({cols}) VALUES ({marks})", row)

    def audit_rows(self, session_id: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM tool_audit", []
        if session_id is not None:
            sql, params = sql + " WHERE session_id = ?", [session_id]
        rows = self.conn.execute(sql + " ORDER BY id DESC LIMIT 100", params).fetchall()
        return [{**dict(r), "arguments": json.loads(r["arguments"])} for r in rows]

    def add_call(self, rec: Mapping[str, Any]) -> None:
        cols = ("call_sid", "direction", "from", "to", "role", "verified", "started_at",
                "ended_at", "reason", "purpose")  # fmt: skip
        self.conn.execute(
            "INSERT OR REPLACE INTO calls (call_sid, direction, from_num, to_num, role, "
            "verified, started_at, ended_at, reason, purpose) VALUES (?,?,?,?,?,?,?,?,?,?)",
            tuple(rec.get(c, "") for c in cols),
        )

    def recent_calls(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM calls ORDER BY ended_at DESC LIMIT 50").fetchall()
        out = []
        for r in reversed(rows):
            d = dict(r)
            d["from"], d["to"] = d.pop("from_num"), d.pop("to_num")
            d["verified"] = bool(d["verified"])
            out.append(d)
        return out

    def close(self) -> None:
        self.conn.close()
