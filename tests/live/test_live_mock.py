"""The Live mock speaks the documented wire: strict `session.start`, appends that need
`delegation_id`, Responses-only commands, an unknown type answered with the supported list,
and `session.closed` with the final usage as the last event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from foreman.testing.mock_realtime import MockRealtimeServer, Scenario
from foreman.testing.timeouts import unit

START = {
    "type": "session.start",
    "session": {
        "model": "gpt-live-1",
        "audio": {"format": {"type": "audio/pcmu", "rate": 8000}},
        "delegation": {"type": "responses", "responses": {"model": "gpt-6-luna"}},
    },
}


@pytest.fixture
async def mock() -> AsyncIterator[MockRealtimeServer]:
    async with MockRealtimeServer(Scenario()) as server:
        yield server


async def next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(unit(5)):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == kind:
                return event


async def test_a_realtime_field_in_session_start_is_rejected(mock: MockRealtimeServer) -> None:
    async with connect(mock.live_url) as ws:
        bad = json.loads(json.dumps(START))
        bad["session"]["turn_detection"] = {"type": "server_vad"}
        await ws.send(json.dumps({**bad, "event_id": "c1"}))
        error = await next_of(ws, "error")
        assert error["error"]["code"] == "unknown_parameter"
        assert error["error"]["param"] == "session.turn_detection"
        assert error["error"]["client_event_id"] == "c1"
    mock.live_sessions[0].received.clear()  # sent on purpose; not Foreman's


async def test_the_wire_rules_of_a_started_session(mock: MockRealtimeServer) -> None:
    async with connect(mock.live_url) as ws:
        await ws.send(json.dumps(START))
        started = await next_of(ws, "session.started")
        assert started["session"]["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}
        audio = await next_of(ws, "session.output_audio.delta")  # the track runs at once
        assert set(audio) == {"type", "delta"}
        await ws.send(json.dumps({"type": "session.thinking.append", "content": "x"}))
        assert (await next_of(ws, "error"))["error"]["param"] == "delegation_id"
        await ws.send(json.dumps({"type": "session.input_audio.commit"}))
        message = (await next_of(ws, "error"))["error"]["message"]
        assert "session.input_audio.append" in message  # the supported list, as a canary
        await ws.send(json.dumps({"type": "session.update", "session": {"model": "x"}}))
        assert (await next_of(ws, "error"))["error"]["code"] == "immutable_field_update"
        await ws.send(json.dumps({"type": "session.close"}))
        closed = await next_of(ws, "session.closed")
        assert closed["reason"] == "close_requested" and closed["usage"]["seconds"] >= 0.1
    session = mock.live_sessions[0]
    assert session.sent[-1]["type"] == "session.closed"
    session.received[:] = [
        e for e in session.received if e["type"] in ("session.start", "session.close")
    ]
