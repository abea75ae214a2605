"""In-process event bus with a bounded queue per subscriber.

A slow subscriber (an SSE client that stopped reading) loses its oldest events and is told
how many it missed; it never slows the publisher or the other subscribers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BusEvent:
    kind: str  # e.g. "approval.prompt", "approval.decided", "session.started"
    data: dict[str, Any]
    seq: int = 0
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "at": self.at, "data": self.data}


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[BusEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, event: BusEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> BusEvent:
        return await self._queue.get()

    def get_nowait(self) -> BusEvent | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        self._bus._subs.discard(self)

    async def __aiter__(self) -> AsyncIterator[BusEvent]:
        try:
            while True:
                yield await self._queue.get()
        finally:
            self.close()


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)

    def publish(self, kind: str, **data: Any) -> BusEvent:
        event = BusEvent(kind=kind, data=data, seq=next(self._seq))
        for sub in list(self._subs):
            sub._offer(event)
        return event

    def subscribe(self, maxsize: int = 256) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subs.add(sub)
        return sub

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)
