"""A closed bus (the server shutting down) ends every subscription after the events queued for
it, so `GET /api/events` completes instead of hanging."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foreman.api import routes_events
from foreman.bus import BusClosed, EventBus
from foreman.events import DtmfPressed, ModeChanged
from foreman.testing.timeouts import unit


async def test_the_event_stream_sends_what_is_queued_then_ends() -> None:
    bus = EventBus()
    stream = routes_events.sse_stream(bus, [], ping_s=60)
    assert await anext(stream) == b": connected\n\n"
    bus.publish(ModeChanged("voice"))
    bus.publish(ModeChanged("text"))
    bus.close()
    rest = [chunk async for chunk in stream]  # ends by itself: no timeout, no cancel
    assert [b"event: mode" in chunk for chunk in rest] == [True, True]
    assert b'"mode": "text"' in rest[-1]
    assert bus.subscriber_count == 0


async def test_a_reader_waiting_is_woken_by_the_close() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    reading = asyncio.Event()

    async def read() -> object:
        reading.set()
        return await sub.get()  # parks on the empty queue before this task yields

    waiting = asyncio.create_task(read())
    await asyncio.wait_for(reading.wait(), unit(5))  # wakes only once the reader is parked
    assert not waiting.done()
    bus.close()
    with pytest.raises(BusClosed):
        await asyncio.wait_for(waiting, unit(5))
    with pytest.raises(BusClosed):  # and stays ended
        sub.get_nowait()


async def test_a_subscription_after_the_close_ends_at_once() -> None:
    bus = EventBus()
    bus.close()
    bus.close()  # idempotent
    assert [e async for e in bus.subscribe()] == []
    bus.publish(ModeChanged("voice"))  # publishing still works; nobody hears it


@given(published=st.integers(0, 40), maxsize=st.integers(1, 12))
async def test_a_closed_subscription_yields_the_newest_events_and_counts_the_rest(
    published: int, maxsize: int
) -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=maxsize)
    for i in range(published):
        bus.publish(DtmfPressed("s1", str(i)))
    bus.close()
    got = [int(e.data["digit"]) async for e in sub]
    assert got == list(range(published - len(got), published))  # the newest, in order
    assert len(got) + sub.dropped == published
    assert len(got) >= min(published, maxsize - 1)  # the end marker costs one place at most
