"""A call whose model cannot be reached is never silent: the caller hears the packaged
apology, then the call is hung up through Twilio REST and its record says why. Through the
real app on loopback: the fake Twilio caller, the mock Realtime server (refusing at start),
a port nobody listens on, a server that accepts and never answers, a key that is missing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from phone_stack import Stack, phone_stack

from foreman.phone.clips import clip
from foreman.testing.mock_realtime import Faults, Match, Reply, Rule, Scenario
from foreman.testing.server import free_port
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

HELLO = Scenario([Rule(Match.any(), Reply.say("Hello, Foreman here."))])


@pytest.fixture
def mute_server() -> Iterator[str]:
    """A WebSocket endpoint that accepts TCP connections and never answers the handshake."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/realtime"


async def apology_call(stack: Stack) -> tuple[bytes, str]:
    """Dial in; return what the caller heard and the reason the call was recorded with,
    once the server has hung up through REST."""
    async with stack.caller() as caller:
        stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
        await caller.dial()
        await caller.wait_closed(timeout=unit(20))
        assert await stack.rest.wait_for("hangup", timeout=unit(5)) == [caller.call_sid]
    async with asyncio.timeout(unit(10)):  # the record is finished after the hang-up
        while (event := await stack.events.get()).kind != "call.recorded":
            pass
    assert event.data["call_sid"] == caller.call_sid
    await stack.twilio.records.flush()
    record = await stack.twilio.records.store.get(caller.call_sid)
    assert record is not None and record.ended_at is not None
    assert record.reason == event.data["reason"]
    return bytes(caller.played), record.reason


def assert_heard_the_apology(played: bytes) -> None:
    apology = clip("apology")
    assert played.startswith(apology), f"heard {len(played)} bytes, not the apology"
    assert len(played) - len(apology) < 160  # the last 20 ms frame padded with silence


async def test_a_model_refusing_at_start() -> None:
    async with phone_stack(HELLO) as stack:
        stack.mock.faults = Faults(
            error_events=[{"type": "invalid_request_error", "code": "insufficient_quota"}]
        )
        played, reason = await apology_call(stack)
    assert_heard_the_apology(played)
    assert reason.startswith("backend failed to start: ") and "insufficient_quota" in reason
    assert stack.mock.sessions, "the model was dialled"


async def test_a_model_nobody_listens_for() -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    async with phone_stack(HELLO, realtime={"endpoint": nowhere}) as stack:
        played, reason = await apology_call(stack)
    assert_heard_the_apology(played)
    assert reason.startswith("backend failed to start: ") and "connection refused" in reason


async def test_a_model_that_never_answers(mute_server: str) -> None:
    realtime: dict[str, Any] = {"endpoint": mute_server, "connect_timeout_s": 0.5}
    async with phone_stack(HELLO, realtime=realtime) as stack:
        played, reason = await apology_call(stack)
    assert_heard_the_apology(played)
    assert reason.startswith("backend failed to start: ")
    assert "0.5 s" in reason or "timed out" in reason, reason


async def test_a_missing_key_is_checked_before_dialling() -> None:
    service = "wss://api.openai.com/v1/realtime"  # never dialled: no key is set
    async with phone_stack(HELLO, realtime={"endpoint": service, "api_key": ""}) as stack:
        played, reason = await apology_call(stack)
    assert_heard_the_apology(played)
    assert reason.startswith("no OPENAI_API_KEY is set")
