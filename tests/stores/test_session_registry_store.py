"""SessionRegistryStore contract: live sessions only, last writer wins, leftovers of a
crashed process are handed back once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from foreman.stores import SessionRecord, SessionRegistryStore

from .conftest import WALL, durable, open_store


def session(session_id: str = "call-CA1", started_at: float = WALL, **kw: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "kind": "phone",
        "channel": "phone",
        "caller": "+14155550100",
        "backend": "openai_realtime",
        "status": {"queued_ms": 0, "stats": {"frames_in": 10}},
        **kw,
    }
    return SessionRecord(id=session_id, started_at=started_at, **fields)


async def test_implements_the_interface(session_store: Any) -> None:
    assert isinstance(session_store, SessionRegistryStore)


async def test_upsert_get_and_list(session_store: Any) -> None:
    desk = session("desk-1", WALL + 1, kind="desk", channel="local_voice", caller="owner")
    await session_store.upsert(desk)
    await session_store.upsert(session())
    assert await session_store.get("call-CA1") == session()
    assert await session_store.live() == [session(), desk]
    assert await session_store.get("nobody") is None


async def test_an_upsert_replaces_the_status(session_store: Any) -> None:
    await session_store.upsert(session())
    later = session(status={"queued_ms": 40, "stats": {"frames_in": 900}})
    await session_store.upsert(later)
    assert await session_store.live() == [later]


async def test_a_stored_status_does_not_follow_later_changes(session_store: Any) -> None:
    status: dict[str, Any] = {"turns": 1}
    await session_store.upsert(session(status=status))
    status["turns"] = 2
    got = await session_store.get("call-CA1")
    assert got is not None and got.status == {"turns": 1}


async def test_remove_is_idempotent(session_store: Any) -> None:
    await session_store.upsert(session())
    assert await session_store.remove("call-CA1")
    assert not await session_store.remove("call-CA1")
    assert await session_store.live() == []


async def test_leftovers_are_handed_back_once(session_store: Any) -> None:
    await session_store.upsert(session("chat-9", WALL + 5, kind="chat", channel="chat"))
    await session_store.upsert(session("call-CA1", WALL))
    left = await session_store.mark_interrupted(WALL + 60)
    assert [(s.id, s.ended_at) for s in left] == [("call-CA1", WALL + 60), ("chat-9", WALL + 60)]
    assert left[0].status == session().status
    assert await session_store.live() == []
    assert await session_store.mark_interrupted(WALL + 61) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "fax"}, "kind"),
        ({"status": {"at": object()}}, "JSON"),
        ({"session_id": ""}, "id"),
    ],
)
def test_records_are_checked(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        session(**fields)


@pytest.mark.parametrize("impl", durable("sessions"))
async def test_sessions_survive_reopening(impl: str, db_path: Path) -> None:
    store = await open_store("sessions", impl, db_path)
    await store.upsert(session())
    await store.aclose()
    reopened = await open_store("sessions", impl, db_path)
    try:
        assert await reopened.live() == [session()]
        assert [s.id for s in await reopened.mark_interrupted(WALL + 1)] == ["call-CA1"]
    finally:
        await reopened.aclose()
