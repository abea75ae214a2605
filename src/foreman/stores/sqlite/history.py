"""The SQLite history stores: the audit log (`tool_audit`) and call records (`calls`)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from typing import Any

from foreman.stores.records import INTERRUPTED_REASON, AuditRecord, CallRecord, dumps
from foreman.stores.sqlite.base import SqliteStore
from foreman.stores.sqlite.db import transaction


class SqliteAuditStore(SqliteStore):
    """`AuditStore` in the `tool_audit` table (the rows the first released version wrote too)."""

    async def record(self, rec: AuditRecord) -> int:
        return await self._run(_insert_audit, rec)

    async def query(self, limit: int = 100, session_id: str | None = None) -> list[dict[str, Any]]:
        return await self._run(_query_audit, max(0, int(limit)), session_id)


def _insert_audit(conn: sqlite3.Connection, rec: AuditRecord) -> int:
    row = asdict(rec)
    row["arguments"] = dumps(rec.arguments, lenient=True)
    cols = ", ".join(row)
    marks = ", ".join(f":{k}" for k in row)
    cur = conn.execute(f"INSERT INTO tool_audit ({cols}) VALUES ({marks})", row)
    return int(cur.lastrowid or 0)


def _query_audit(
    conn: sqlite3.Connection, limit: int, session_id: str | None
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM tool_audit"
    params: list[Any] = []
    if session_id is not None:
        sql += " WHERE session_id = ?"
        params.append(session_id)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    out = []
    for r in conn.execute(sql, params).fetchall():
        d = dict(r)
        d["arguments"] = json.loads(d["arguments"])
        out.append(d)
    return out


_CALL_COLUMNS = (
    "call_sid, direction, from_num, to_num, role, verified, started_at, ended_at, reason, purpose"
)


class SqliteCallRecordStore(SqliteStore):
    """`CallRecordStore` in the `calls` table."""

    async def begin(self, record: CallRecord) -> bool:
        if record.ended_at is not None:
            raise ValueError("begin takes a live call record (ended_at None)")
        return await self._run(_begin_call, record)

    async def finish(self, call_sid: str, ended_at: float, reason: str) -> bool:
        return await self._run(_finish_call, call_sid, ended_at, reason)

    async def get(self, call_sid: str) -> CallRecord | None:
        return await self._run(_get_call, call_sid)

    async def recent(self, limit: int = 50) -> list[CallRecord]:
        return await self._run(_recent_calls, max(0, int(limit)))

    async def mark_interrupted(self, now: float) -> list[CallRecord]:
        return await self._run(_interrupt_calls, now)


def _begin_call(conn: sqlite3.Connection, r: CallRecord) -> bool:
    # One statement: insert, or replace a live record, never touch a finished one.
    cur = conn.execute(
        f"INSERT INTO calls ({_CALL_COLUMNS}) VALUES (?,?,?,?,?,?,?,NULL,?,?) "
        "ON CONFLICT (call_sid) DO UPDATE SET direction=excluded.direction, "
        "from_num=excluded.from_num, to_num=excluded.to_num, role=excluded.role, "
        "verified=excluded.verified, started_at=excluded.started_at, "
        "reason=excluded.reason, purpose=excluded.purpose "
        "WHERE calls.ended_at IS NULL",
        (
            r.call_sid,
            r.direction,
            r.from_,
            r.to,
            r.role,
            int(r.verified),
            r.started_at,
            r.reason,
            r.purpose,
        ),
    )
    return cur.rowcount == 1


def _finish_call(conn: sqlite3.Connection, call_sid: str, ended_at: float, reason: str) -> bool:
    cur = conn.execute(
        "UPDATE calls SET ended_at = ?, reason = ? WHERE call_sid = ? AND ended_at IS NULL",
        (ended_at, reason, call_sid),
    )
    return cur.rowcount == 1


def _get_call(conn: sqlite3.Connection, call_sid: str) -> CallRecord | None:
    row = conn.execute(
        f"SELECT {_CALL_COLUMNS} FROM calls WHERE call_sid = ?", (call_sid,)
    ).fetchone()
    return None if row is None else _call(row)


def _recent_calls(conn: sqlite3.Connection, limit: int) -> list[CallRecord]:
    rows = conn.execute(
        f"SELECT {_CALL_COLUMNS} FROM calls WHERE ended_at IS NOT NULL "
        "ORDER BY ended_at DESC, call_sid DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [_call(r) for r in reversed(rows)]


def _interrupt_calls(conn: sqlite3.Connection, now: float) -> list[CallRecord]:
    with transaction(conn):
        rows = conn.execute(
            f"UPDATE calls SET ended_at = MAX(?, started_at), reason = ? WHERE ended_at IS NULL "
            f"RETURNING {_CALL_COLUMNS}",
            (now, INTERRUPTED_REASON),
        ).fetchall()
    return sorted((_call(r) for r in rows), key=lambda c: (c.started_at, c.call_sid))


def _call(row: sqlite3.Row) -> CallRecord:
    return CallRecord(
        call_sid=row["call_sid"],
        direction=row["direction"],
        from_=row["from_num"],
        to=row["to_num"],
        role=row["role"],
        verified=bool(row["verified"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        reason=row["reason"],
        purpose=row["purpose"],
    )
