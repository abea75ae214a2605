"""CallRecordStore contract: written at the start and at the end, first end wins, calls a
crashed process left live are ended as interrupted at start-up."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from foreman.stores import INTERRUPTED_REASON, CallRecord, CallRecordStore

from .conftest import WALL, durable, open_store


def live(sid: str = "CA1", started_at: float = WALL, **kw: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "direction": "inbound",
        "from_": "+14155550100",
        "to": "+14155550199",
        "role": "contact",
        "verified": True,
        **kw,
    }
    return CallRecord(call_sid=sid, started_at=started_at, **fields)


def ended(sid: str, started_at: float, ended_at: float, reason: str = "hung up") -> CallRecord:
    return replace(live(sid, started_at), ended_at=ended_at, reason=reason)


async def test_implements_the_interface(call_store: Any) -> None:
    assert isinstance(call_store, CallRecordStore)


async def test_a_call_is_recorded_when_it_starts(call_store: Any) -> None:
    assert await call_store.begin(live(purpose="confirm Friday", direction="outbound"))
    got = await call_store.get("CA1")
    assert got == live(purpose="confirm Friday", direction="outbound")
    assert got is not None and got.live
    assert await call_store.recent() == []  # recent lists finished calls only
    assert await call_store.get("CA-unknown") is None


async def test_the_first_end_wins(call_store: Any) -> None:
    await call_store.begin(live())
    assert await call_store.finish("CA1", WALL + 30, "caller hung up")
    assert not await call_store.finish("CA1", WALL + 31, "server shutting down")
    assert await call_store.get("CA1") == ended("CA1", WALL, WALL + 30, "caller hung up")
    assert not await call_store.finish("CA-unknown", WALL, "x")


async def test_a_finished_call_is_not_reopened(call_store: Any) -> None:
    await call_store.begin(live())
    await call_store.finish("CA1", WALL + 30, "done")
    assert not await call_store.begin(live(role="owner"))
    assert await call_store.get("CA1") == ended("CA1", WALL, WALL + 30, "done")


async def test_begin_again_replaces_a_live_record(call_store: Any) -> None:
    await call_store.begin(live())
    assert await call_store.begin(live(role="owner"))
    assert await call_store.get("CA1") == live(role="owner")


async def test_begin_takes_only_live_records(call_store: Any) -> None:
    with pytest.raises(ValueError, match="live"):
        await call_store.begin(ended("CA1", WALL, WALL + 1))


async def test_recent_is_the_newest_finished_oldest_first(call_store: Any) -> None:
    for i, end in enumerate((30, 10, 20, 40)):
        await call_store.begin(live(f"CA{i}", WALL))
        await call_store.finish(f"CA{i}", WALL + end, "done")
    await call_store.begin(live("CA-live", WALL))
    assert [c.call_sid for c in await call_store.recent()] == ["CA1", "CA2", "CA0", "CA3"]
    assert [c.call_sid for c in await call_store.recent(2)] == ["CA0", "CA3"]
    assert await call_store.recent(0) == []


async def test_live_calls_are_ended_as_interrupted_at_start_up(call_store: Any) -> None:
    await call_store.begin(live("CA2", WALL + 2))
    await call_store.begin(live("CA1", WALL + 1))
    await call_store.begin(live("CA0", WALL))
    await call_store.finish("CA0", WALL + 5, "done")
    now = WALL + 100
    interrupted = await call_store.mark_interrupted(now)
    assert interrupted == [
        ended("CA1", WALL + 1, now, INTERRUPTED_REASON),
        ended("CA2", WALL + 2, now, INTERRUPTED_REASON),
    ]
    assert await call_store.get("CA0") == ended("CA0", WALL, WALL + 5, "done")
    assert [c.call_sid for c in await call_store.recent()] == ["CA0", "CA1", "CA2"]
    assert await call_store.mark_interrupted(now + 1) == []


def test_the_api_shape_uses_from() -> None:
    assert ended("CA1", WALL, WALL + 3).to_dict() == {
        "call_sid": "CA1",
        "direction": "inbound",
        "from": "+14155550100",
        "to": "+14155550199",
        "role": "contact",
        "verified": True,
        "started_at": WALL,
        "ended_at": WALL + 3,
        "reason": "hung up",
        "purpose": "",
    }


@pytest.mark.parametrize("impl", durable("calls"))
async def test_records_survive_reopening(impl: str, db_path: Path) -> None:
    store = await open_store("calls", impl, db_path)
    await store.begin(live("CA1"))
    await store.begin(live("CA2"))
    await store.finish("CA2", WALL + 9, "done")
    await store.aclose()
    reopened = await open_store("calls", impl, db_path)
    try:
        assert await reopened.get("CA1") == live("CA1")
        assert await reopened.recent() == [ended("CA2", WALL, WALL + 9, "done")]
    finally:
        await reopened.aclose()
