"""`POST /api/calls/{call_sid}/hangup`: the owner ends a live call from the control API."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from phone_stack import phone_stack

from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e


async def test_hang_up_a_live_call_through_rest_and_record_why() -> None:
    scenario = Scenario([Rule(Match(instructions="Greet"), Reply.say("Hello there."))])
    async with phone_stack(scenario) as stack, httpx.AsyncClient(base_url=stack.base) as http:
        caller = stack.caller()
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            await stack.mock.wait_for_server_event("response.done", timeout=unit(10))

            r = await http.post(f"/api/calls/{caller.call_sid}/hangup")
            assert r.status_code == 202, r.text
            assert r.json() == {"call_sid": caller.call_sid, "status": "hanging up"}
            assert await stack.rest.wait_for("hangup", timeout=unit(5)) == [caller.call_sid]
            await caller.wait_closed(timeout=unit(5))

        async with asyncio.timeout(unit(10)):
            while True:
                event = await stack.events.get()
                if event.kind == "call.recorded":
                    break
        assert event.data["call_sid"] == caller.call_sid
        assert event.data["reason"] == "hung up by the owner"
        assert (await http.get("/api/calls")).json()["active"] == []
        # Over: a second hang-up finds no live call.
        r = await http.post(f"/api/calls/{caller.call_sid}/hangup")
        assert r.status_code == 404 and caller.call_sid in r.json()["detail"]


async def test_hang_up_refuses_what_is_not_a_live_call_sid() -> None:
    async with phone_stack(Scenario()) as stack, httpx.AsyncClient(base_url=stack.base) as http:
        r = await http.post("/api/calls/CA" + "0" * 32 + "/hangup")
        assert r.status_code == 404
        r = await http.post("/api/calls/not-a-sid/hangup")
        assert r.status_code == 422 and "not-a-sid" not in r.text
        assert stack.rest.hangups == []
