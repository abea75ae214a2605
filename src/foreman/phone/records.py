"""A record of every phone call, written when the call begins and finished when it ends,
in the call record store (so a crash leaves a call marked live, which the next start-up
closes as interrupted), and published on the bus (`call.recorded`) when it ends."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from foreman.bus import EventBus
from foreman.events import CallRecorded
from foreman.stores.interfaces import CallRecordStore
from foreman.stores.memory import MemoryCallRecordStore
from foreman.stores.records import CallRecord

__all__ = ["CallRecord", "CallRecords"]

log = logging.getLogger("foreman.call")


class CallRecords:
    def __init__(self, bus: EventBus | None = None, store: CallRecordStore | None = None) -> None:
        self._bus = bus
        self.store: CallRecordStore = store if store is not None else MemoryCallRecordStore()
        self._writes: set[asyncio.Task[Any]] = set()
        self.finished: list[CallRecord] = []  # this process's, newest last (bounded)

    def begin(self, rec: CallRecord) -> None:
        """The call is live: write it now (off the event loop)."""
        self._spawn(self.store.begin(rec), rec.call_sid)

    def finish(self, rec: CallRecord) -> None:
        """The call ended (`rec.ended_at`, `rec.reason` set): finish its record and say so
        on the bus. A call that never began (refused before its backend) is written whole."""
        assert rec.ended_at is not None
        self.finished = [*self.finished[-999:], rec]
        if self._bus is not None:
            self._bus.publish(CallRecorded(rec.to_dict()))
        self._spawn(self._finish(rec), rec.call_sid)

    async def _finish(self, rec: CallRecord) -> None:
        assert rec.ended_at is not None
        if not await self.store.finish(rec.call_sid, rec.ended_at, rec.reason):
            # Never begun (refused before a backend), or its begin is still on its way.
            await self.store.begin(replace(rec, ended_at=None, reason=""))
            await self.store.finish(rec.call_sid, rec.ended_at, rec.reason)

    def _spawn(self, work: Any, call_sid: str) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._writes.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._writes.discard(t)
            if not t.cancelled() and t.exception() is not None:
                # A full disk must not take the server down; the bus has the record.
                log.error("%s: call record not stored: %s", call_sid, t.exception())

        task.add_done_callback(done)

    async def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent finished calls, oldest first."""
        await self.flush()
        return [r.to_dict() for r in await self.store.recent(limit)]

    async def flush(self) -> None:
        """Wait until every record handed over so far is in the store."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)
