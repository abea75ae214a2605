"""Every finished call is stored (SQLite) and still listed after a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from phone_stack import phone_stack

from foreman.api.app import create_app
from foreman.stores import SqliteCallRecordStore
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit


async def test_a_finished_call_survives_a_restart(tmp_path: Any) -> None:
    db = str(tmp_path / "foreman.db")
    async with phone_stack(Scenario([Rule(Match.any(), Reply.say("Hi."))]), tools_db=db) as stack:
        async with stack.caller(from_="+15550000123") as caller:
            await caller.dial()
            await stack.mock.wait_for_server_event("response.done", timeout=unit(10))
            await caller.hangup()
        async with asyncio.timeout(unit(10)):
            while (await stack.events.get()).kind != "call.recorded":
                pass
        await stack.twilio.records.flush()
        settings = stack.settings
        async with httpx.AsyncClient(base_url=stack.base, timeout=unit(5)) as c:
            listed = (await c.get("/api/calls")).json()["recent"]
        assert [c["call_sid"] for c in listed] == [caller.call_sid]

    # A new process on the same database: the record is still there.
    store = await SqliteCallRecordStore.open(db)
    stored = [c.to_dict() for c in await store.recent(10)]
    await store.aclose()
    assert [(c["call_sid"], c["from"], c["role"]) for c in stored] == [
        (caller.call_sid, "+15550000123", "unknown")
    ]
    assert stored[0]["ended_at"] >= stored[0]["started_at"] > 0
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as c:
        recent = (await c.get("/api/calls")).json()["recent"]
    assert [r["call_sid"] for r in recent] == [caller.call_sid]
