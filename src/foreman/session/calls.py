"""The registry of phone calls: live sessions plus a record of every call (issue 4 item 8).

In memory, bounded; each record is also published on the bus as `call.recorded`, so a store
(history, SQLite) can persist it without this module knowing about it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from foreman.session.bus import EventBus

if TYPE_CHECKING:
    from foreman.session.call import CallSession


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

    def __init__(self, bus: EventBus | None = None, keep: int = 1000) -> None:
        self._bus = bus
        self._active: dict[str, CallSession] = {}
        self.records: deque[CallRecord] = deque(maxlen=keep)

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
