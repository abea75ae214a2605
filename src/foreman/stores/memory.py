"""In-memory stores: the defaults for live state of a single process (tokens, intents, the
session registry) and stand-ins for the durable stores in tests.

No method awaits anything, so each runs to completion on the event loop: every operation is
atomic with respect to other tasks. Not thread-safe: use them from one event loop. Dict
fields are kept as JSON copies, so what comes back equals what the SQLite stores return.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from foreman.policy.approvals import ApprovalState
from foreman.stores.records import (
    INTERRUPTED_REASON,
    ApprovalRecord,
    AuditRecord,
    CallRecord,
    OutboundIntent,
    SessionRecord,
    json_copy,
)
from foreman.stores.token_table import DEFAULT_ADMITTED_TTL_S, StreamTokenTable


class MemoryStreamTokenStore:
    """`StreamTokenStore` for one process; `now` is that process's monotonic clock."""

    def __init__(
        self,
        ttl_s: float = 60.0,
        *,
        admitted_ttl_s: float = DEFAULT_ADMITTED_TTL_S,
        secret: bytes | None = None,
    ) -> None:
        self._table = StreamTokenTable(ttl_s, admitted_ttl_s=admitted_ttl_s, secret=secret)

    def __len__(self) -> int:
        return len(self._table)

    async def issue(self, call_sid: str, now: float) -> str | None:
        return self._table.issue(call_sid, now)

    async def redeem(self, token: str, call_sid: str, now: float) -> bool:
        return self._table.redeem(token, call_sid, now)

    async def release(self, call_sid: str) -> None:
        self._table.release(call_sid)

    async def aclose(self) -> None:
        return None


class MemoryOutboundIntentStore:
    """`OutboundIntentStore` for one process; intents expire `ttl_s` after `created`."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.ttl_s = ttl_s
        self._intents: dict[str, OutboundIntent] = {}

    def __len__(self) -> int:
        return len(self._intents)

    async def put(self, intent: OutboundIntent) -> None:
        if not intent.ref:
            raise ValueError("an outbound intent needs a ref")
        self._intents[intent.ref] = intent

    async def attach_call_sid(self, ref: str, call_sid: str) -> bool:
        intent = self._intents.get(ref)
        if intent is None:
            return False
        self._intents[ref] = replace(intent, call_sid=call_sid)
        return True

    async def take(self, ref: str) -> OutboundIntent | None:
        return self._intents.pop(ref, None)

    async def purge(self, now: float) -> int:
        old = [ref for ref, i in self._intents.items() if now - i.created >= self.ttl_s]
        for ref in old:
            del self._intents[ref]
        return len(old)

    async def aclose(self) -> None:
        return None


class MemoryApprovalStore:
    """`ApprovalStore` that forgets everything with the process (tests, throwaway runs)."""

    def __init__(self) -> None:
        self._records: dict[str, ApprovalRecord] = {}

    async def save(self, record: ApprovalRecord) -> bool:
        stored = self._records.get(record.id)
        if stored is not None and not stored.pending:
            return False
        self._records[record.id] = replace(record, arguments=json_copy(record.arguments))
        return True

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        return self._records.get(approval_id)

    async def pending(self) -> list[ApprovalRecord]:
        return sorted(
            (r for r in self._records.values() if r.pending), key=lambda r: (r.created_at, r.id)
        )

    async def expire_orphans(self, now: float, reason: str) -> list[ApprovalRecord]:
        expired = [
            replace(
                r,
                state=ApprovalState.EXPIRED,
                answered_at=max(now, r.created_at),
                note=reason,
                approver=None,
            )
            for r in await self.pending()
        ]
        for r in expired:
            self._records[r.id] = r
        return expired

    async def aclose(self) -> None:
        return None


class MemorySessionRegistryStore:
    """`SessionRegistryStore` for one process."""

    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}
        self._beat: float | None = None

    async def upsert(self, record: SessionRecord) -> None:
        self._sessions[record.id] = replace(record, status=json_copy(record.status))

    async def remove(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def get(self, session_id: str) -> SessionRecord | None:
        return self._sessions.get(session_id)

    async def live(self) -> list[SessionRecord]:
        return sorted(self._sessions.values(), key=lambda r: (r.started_at, r.id))

    async def mark_interrupted(self, now: float) -> list[SessionRecord]:
        left = [replace(r, ended_at=max(now, r.started_at)) for r in await self.live()]
        self._sessions.clear()
        return left

    async def beat(self, now: float) -> None:
        self._beat = now

    async def last_beat(self) -> float | None:
        return self._beat

    async def aclose(self) -> None:
        return None


class MemoryAuditStore:
    """`AuditStore` that forgets everything with the process (tests)."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    async def record(self, rec: AuditRecord) -> int:
        row = asdict(rec)
        row["arguments"] = json_copy(rec.arguments, lenient=True)
        row["id"] = len(self._rows) + 1
        self._rows.append(row)
        return int(row["id"])

    async def query(self, limit: int = 100, session_id: str | None = None) -> list[dict[str, Any]]:
        limit = max(0, int(limit))
        out: list[dict[str, Any]] = []
        for row in reversed(self._rows):
            if len(out) >= limit:
                break
            if session_id is None or row["session_id"] == session_id:
                out.append(json_copy(row))
        return out

    async def aclose(self) -> None:
        return None


class MemoryCallRecordStore:
    """`CallRecordStore` that forgets everything with the process (tests)."""

    def __init__(self) -> None:
        self._calls: dict[str, CallRecord] = {}

    async def begin(self, record: CallRecord) -> bool:
        if record.ended_at is not None:
            raise ValueError("begin takes a live call record (ended_at None)")
        stored = self._calls.get(record.call_sid)
        if stored is not None and not stored.live:
            return False
        self._calls[record.call_sid] = record
        return True

    async def finish(self, call_sid: str, ended_at: float, reason: str) -> bool:
        stored = self._calls.get(call_sid)
        if stored is None or not stored.live:
            return False
        self._calls[call_sid] = replace(stored, ended_at=ended_at, reason=reason)
        return True

    async def get(self, call_sid: str) -> CallRecord | None:
        return self._calls.get(call_sid)

    async def recent(self, limit: int = 50) -> list[CallRecord]:
        limit = max(0, int(limit))
        done = sorted((r for r in self._calls.values() if not r.live), key=_by_end)
        return done[-limit:] if limit else []

    async def mark_interrupted(self, now: float) -> list[CallRecord]:
        live = sorted((r for r in self._calls.values() if r.live), key=_by_start)
        ended = [
            replace(r, ended_at=max(now, r.started_at), reason=INTERRUPTED_REASON) for r in live
        ]
        for r in ended:
            self._calls[r.call_sid] = r
        return ended

    async def aclose(self) -> None:
        return None


def _by_start(record: CallRecord) -> tuple[float, str]:
    return (record.started_at, record.call_sid)


def _by_end(record: CallRecord) -> tuple[float, str]:
    return (record.ended_at or 0.0, record.call_sid)
