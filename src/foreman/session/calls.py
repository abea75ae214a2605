"""The registry of phone calls: live sessions plus a record of every call (issue 4 item 8).

In memory, bounded; each record is also published on the bus as `call.recorded` and, when a
store is given, written to it (off the event loop) so it survives a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from foreman.session.bus import EventBus

if TYPE_CHECKING:
    from foreman.session.call import CallSession

log = logging.getLogger(__name__)


class CallStore(Protocol):
    def record_sync(self, rec: dict[str, Any]) -> None: ...
    async def recent(self, limit: int = 50) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CallRecord:
    call_sid: str
    direction: str
    from_: str
    to: str
    role: str
    verified: bool
    started_at: float  # unix time, for people
    ended_at: float
    reason: str
    purpose: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["from"] = d.pop("from_")
        return d


class CallRegistry:
    """Live calls by CallSid and the last `keep` finished ones."""

    def __init__(
        self, bus: EventBus | None = None, keep: int = 1000, store: CallStore | None = None
    ) -> None:
        self._bus = bus
        self._active: dict[str, CallSession] = {}
        self.records: deque[CallRecord] = deque(maxlen=keep)
        self.store = store
        self._writes: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._active)

    def __contains__(self, call_sid: object) -> bool:
        return call_sid in self._active

    def get(self, call_sid: str) -> CallSession | None:
        return self._active.get(call_sid)

    def active(self) -> list[CallSession]:
        return list(self._active.values())

    def add(self, session: CallSession) -> None:
        sid = session.info.call_sid
        if sid in self._active:
            raise ValueError(f"call {sid} already has a live session")
        self._active[sid] = session

    def finish(self, session: CallSession, reason: str) -> CallRecord:
        """Drop the live session and keep its record. Called once, from the session's end."""
        if self._active.get(session.info.call_sid) is session:
            del self._active[session.info.call_sid]
        info = session.info
        rec = CallRecord(
            call_sid=info.call_sid,
            direction=info.direction,
            from_=info.from_,
            to=info.to,
            role=str(info.ctx.role),
            verified=info.ctx.verified,
            started_at=session.started_at,
            ended_at=session.ended_at or session.started_at,
            reason=reason,
            purpose=info.purpose,
        )
        self.record(rec)
        return rec

    def record(self, rec: CallRecord) -> None:
        """Keep a record (also for calls that never got a session, e.g. a failed backend)."""
        self.records.append(rec)
        if self._bus is not None:
            self._bus.publish("call.recorded", **rec.to_dict())
        if self.store is not None:
            task = asyncio.get_running_loop().create_task(self._write(rec.to_dict()))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _write(self, row: dict[str, Any]) -> None:
        assert self.store is not None
        try:
            await asyncio.to_thread(self.store.record_sync, row)
        except Exception:  # a full disk must not take the server down; the bus has the record
            log.exception("= call record %s not stored", row.get("call_sid"))

    async def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent finished calls, oldest first: from the store when there is one."""
        if self.store is not None:
            return await self.store.recent(limit)
        return [r.to_dict() for r in list(self.records)[-limit:]]

    async def flush(self) -> None:
        """Wait until every record handed over so far is in the store."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def drain(self) -> None:
        """Shutdown: flush, then close the store."""
        await self.flush()
        if self.store is not None:
            self.store.close()
