"""The SQLite stores for live state that must outlive a crash: approval prompts and the
registry of live sessions (so the next start knows what a crashed process left)."""

from __future__ import annotations

import json
import sqlite3

from foreman.policy.approvals import ApprovalState
from foreman.stores.records import ApprovalRecord, SessionRecord, dumps
from foreman.stores.sqlite.base import SqliteStore
from foreman.stores.sqlite.db import transaction

_APPROVAL_COLUMNS = (
    "id",
    "tool",
    "call_id",
    "arguments",
    "risk",
    "session_id",
    "channel",
    "role",
    "caller_id",
    "caller_name",
    "state",
    "created_at",
    "expires_at",
    "approver",
    "note",
    "answered_at",
)
_APPROVAL_SELECT = f"SELECT {', '.join(_APPROVAL_COLUMNS)} FROM approvals"
# A conditional upsert in one statement: a final record is never overwritten.
_APPROVAL_SAVE = (
    f"INSERT INTO approvals ({', '.join(_APPROVAL_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _APPROVAL_COLUMNS)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _APPROVAL_COLUMNS if c != "id")
    + " WHERE approvals.state = 'pending'"
)


class SqliteApprovalStore(SqliteStore):
    """`ApprovalStore` in the `approvals` table."""

    async def save(self, record: ApprovalRecord) -> bool:
        return await self._run(_save_approval, record)

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        return await self._run(_get_approval, approval_id)

    async def pending(self) -> list[ApprovalRecord]:
        return await self._run(_pending_approvals)

    async def expire_orphans(self, now: float, reason: str) -> list[ApprovalRecord]:
        return await self._run(_expire_orphans, now, reason)


def _save_approval(conn: sqlite3.Connection, record: ApprovalRecord) -> bool:
    row = {c: getattr(record, c) for c in _APPROVAL_COLUMNS}
    row["arguments"] = dumps(record.arguments)
    row["state"] = record.state.value
    return conn.execute(_APPROVAL_SAVE, row).rowcount == 1


def _get_approval(conn: sqlite3.Connection, approval_id: str) -> ApprovalRecord | None:
    row = conn.execute(f"{_APPROVAL_SELECT} WHERE id = ?", (approval_id,)).fetchone()
    return None if row is None else _approval(row)


def _pending_approvals(conn: sqlite3.Connection) -> list[ApprovalRecord]:
    rows = conn.execute(
        f"{_APPROVAL_SELECT} WHERE state = 'pending' ORDER BY created_at, id"
    ).fetchall()
    return [_approval(r) for r in rows]


def _expire_orphans(conn: sqlite3.Connection, now: float, reason: str) -> list[ApprovalRecord]:
    with transaction(conn):
        rows = conn.execute(
            "UPDATE approvals SET state = ?, answered_at = MAX(?, created_at), note = ?, "
            "approver = NULL "
            f"WHERE state = 'pending' RETURNING {', '.join(_APPROVAL_COLUMNS)}",
            (ApprovalState.EXPIRED.value, now, reason),
        ).fetchall()
    return sorted((_approval(r) for r in rows), key=lambda a: (a.created_at, a.id))


def _approval(row: sqlite3.Row) -> ApprovalRecord:
    values = dict(row)
    values["arguments"] = json.loads(values["arguments"])
    return ApprovalRecord(**values)


_SESSION_COLUMNS = "id, kind, channel, caller, started_at, backend, status"


class SqliteSessionRegistryStore(SqliteStore):
    """`SessionRegistryStore` in the `live_sessions` table (one process uses the file)."""

    async def upsert(self, record: SessionRecord) -> None:
        await self._run(_upsert_session, record)

    async def remove(self, session_id: str) -> bool:
        return await self._run(_remove_session, session_id)

    async def get(self, session_id: str) -> SessionRecord | None:
        return await self._run(_get_session, session_id)

    async def live(self) -> list[SessionRecord]:
        return await self._run(_live_sessions)

    async def mark_interrupted(self, now: float) -> list[SessionRecord]:
        return await self._run(_interrupt_sessions, now)

    async def beat(self, now: float) -> None:
        await self._run(_beat, now)

    async def last_beat(self) -> float | None:
        return await self._run(_last_beat)


def _beat(conn: sqlite3.Connection, now: float) -> None:
    conn.execute("INSERT OR REPLACE INTO heartbeat (id, at) VALUES (1, ?)", (now,))


def _last_beat(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT at FROM heartbeat WHERE id = 1").fetchone()
    return None if row is None else float(row[0])


def _upsert_session(conn: sqlite3.Connection, r: SessionRecord) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO live_sessions ({_SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
        (r.id, r.kind, r.channel, r.caller, r.started_at, r.backend, dumps(r.status)),
    )


def _remove_session(conn: sqlite3.Connection, session_id: str) -> bool:
    return conn.execute("DELETE FROM live_sessions WHERE id = ?", (session_id,)).rowcount == 1


def _get_session(conn: sqlite3.Connection, session_id: str) -> SessionRecord | None:
    row = conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM live_sessions WHERE id = ?", (session_id,)
    ).fetchone()
    return None if row is None else _session(row)


def _live_sessions(conn: sqlite3.Connection) -> list[SessionRecord]:
    rows = conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM live_sessions ORDER BY started_at, id"
    ).fetchall()
    return [_session(r) for r in rows]


def _interrupt_sessions(conn: sqlite3.Connection, now: float) -> list[SessionRecord]:
    with transaction(conn):
        rows = conn.execute(f"DELETE FROM live_sessions RETURNING {_SESSION_COLUMNS}").fetchall()
    left = [_session(r, ended_at=max(now, r["started_at"])) for r in rows]
    return sorted(left, key=lambda s: (s.started_at, s.id))


def _session(row: sqlite3.Row, ended_at: float | None = None) -> SessionRecord:
    return SessionRecord(
        id=row["id"],
        kind=row["kind"],
        channel=row["channel"],
        caller=row["caller"],
        started_at=row["started_at"],
        backend=row["backend"],
        status=json.loads(row["status"]),
        ended_at=ended_at,
    )
