"""The typed in-process event bus, at the bottom of the layers.

Publishers hand it small frozen event records (`foreman.events`); subscribers get them back
wrapped with a sequence number and a time. Each subscriber has a bounded queue: a slow one
(an SSE client that stopped reading) loses its oldest events and is told how many, and never
slows the publisher or the others. The wire shape for the event stream is
`{"seq", "kind", "at", "data"}` (`Published.to_dict`). A multi-instance fan-out (Redis)
would sit behind the same `publish`/`subscribe`.

`close()` (at shutdown) ends every subscription once its queued events are read: `get()`
then raises `BusClosed` and `async for` ends, so an event stream closes cleanly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

__all__ = ["BusClosed", "BusEvent", "EventBus", "Published", "Subscription"]


class BusClosed(Exception):
    """The bus was closed (the server is shutting down): this subscription gets no more events."""


@runtime_checkable
class BusEvent(Protocol):
    """A frozen record with a `kind` (e.g. "approval.prompt"), JSON-safe fields, and
    `data()` giving them as a dict (see `foreman.events.Event`)."""

    kind: ClassVar[str]

    def data(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Published:
    seq: int
    at: float  # unix time, for people
    event: BusEvent

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def data(self) -> dict[str, Any]:
        return self.event.data()

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "at": self.at, "data": self.data}


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int, kinds: tuple[str, ...]) -> None:
        self._bus = bus
        # None marks the end (the bus closed); it stays queued so every later get sees it.
        self._queue: asyncio.Queue[Published | None] = asyncio.Queue(maxsize)
        self._kinds = kinds  # prefixes; empty = everything
        self.dropped = 0

    def _offer(self, item: Published) -> None:
        if self._kinds and not item.event.kind.startswith(self._kinds):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    def _end(self) -> None:
        """No more events after those queued (the bus closed)."""
        self.close()
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(None)

    async def get(self) -> Published:
        """The next event; raises BusClosed once the bus closed and the queue is read."""
        return self._unless_end(await self._queue.get())

    def get_nowait(self) -> Published | None:
        """The next event, None when none is queued; raises BusClosed like `get`."""
        try:
            return self._unless_end(self._queue.get_nowait())
        except asyncio.QueueEmpty:
            return None

    def _unless_end(self, item: Published | None) -> Published:
        if item is None:
            self._queue.put_nowait(None)  # the end stays, for the next reader
            raise BusClosed("the event bus is closed")
        return item

    def close(self) -> None:
        self._bus._subs.discard(self)

    async def __aiter__(self) -> AsyncIterator[Published]:
        try:
            while True:
                try:
                    yield await self.get()
                except BusClosed:
                    return
        finally:
            self.close()


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)
        self.closed = False

    def publish(self, event: BusEvent) -> Published:
        item = Published(next(self._seq), time.time(), event)
        for sub in list(self._subs):
            sub._offer(item)
        return item

    def subscribe(self, maxsize: int = 256, kinds: Iterable[str] = ()) -> Subscription:
        """A new subscription; `kinds` are prefixes to keep (e.g. "approval.")."""
        sub = Subscription(self, maxsize, tuple(kinds))
        self._subs.add(sub)
        if self.closed:
            sub._end()
        return sub

    def close(self) -> None:
        """End every subscription after the events already queued for it; later ones end
        at once. Publishing still works (nobody hears it). Idempotent."""
        self.closed = True
        for sub in list(self._subs):
            sub._end()

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)


def event_data(event: Any) -> dict[str, Any]:
    """The fields of a dataclass event as a dict (the default `data()`)."""
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
