"""A record of every phone call: in memory (bounded), on the bus (`call.recorded`) and, when
a store is given, in it (off the event loop) so it survives a restart."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from foreman.bus import EventBus
from foreman.events import CallRecorded

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


class CallRecords:
    """The last `keep` finished calls, and the store behind them."""

    def __init__(
        self, bus: EventBus | None = None, keep: int = 1000, store: CallStore | None = None
    ) -> None:
        self._bus = bus
        self.records: deque[CallRecord] = deque(maxlen=keep)
        self.store = store
        self._writes: set[asyncio.Task[None]] = set()

    def record(self, rec: CallRecord) -> None:
        self.records.append(rec)
        if self._bus is not None:
            self._bus.publish(CallRecorded(rec.to_dict()))
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
