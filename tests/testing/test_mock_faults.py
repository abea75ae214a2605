"""Fault injection: drop, delay, error events, session time limit; pacing."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from foreman.testing.mock_realtime import Faults, Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.speech import synthesize

from .conftest import Client, types, unit

MODEL = "?model=gpt-realtime-2.1"


async def test_drop_after_n_events_aborts_without_a_close_frame() -> None:
    async with MockRealtimeServer(faults=Faults(drop_after_events=3)) as mock:
        async with connect(mock.url + MODEL, max_size=None, max_queue=None) as ws:
            c = Client(ws)
            await c.recv()
            await c.send({"type": "session.update", "session": {"type": "realtime"}})
            await c.send({"type": "response.create"})
            await c.recv()
            await c.recv()
            with pytest.raises(ConnectionClosed) as closed:
                await c.recv()
        assert closed.value.rcvd is None  # no close frame: an abnormal 1006 closure
        session = await mock.wait_for_session()
        assert session.dropped and len(session.sent) == 3
        assert types(c.events) == ["session.created", "session.updated", "response.created"]


async def test_delay_deltas() -> None:
    scenario = Scenario([Rule(Match.any(), Reply.text("one two three four five"))])
    async with (
        MockRealtimeServer(scenario, faults=Faults(delay_deltas_ms=40)) as mock,
        connect(mock.url + MODEL, max_size=None) as ws,
    ):
        c = Client(ws)
        await c.recv()
        await c.send({"type": "response.create"})
        loop = asyncio.get_running_loop()
        stamps = []
        while True:
            event = await c.recv()
            if event["type"] == "response.output_text.delta":
                stamps.append(loop.time())
            if event["type"] == "response.done":
                break
    assert len(stamps) == 5
    assert stamps[-1] - stamps[0] >= 4 * 0.040 * 0.9


async def test_error_events_after_session_created() -> None:
    boom = {
        "type": "server_error",
        "message": "The server had an error while processing your request.",
    }
    async with MockRealtimeServer(faults=Faults(error_events=[boom])) as mock:
        async with connect(mock.url + MODEL) as ws:
            first, second = json.loads(await ws.recv()), json.loads(await ws.recv())
            assert first["type"] == "session.created"
            assert second["type"] == "error" and second["error"]["type"] == "server_error"
            assert second["error"]["message"] == boom["message"]
            # not fatal: the session still answers
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            assert json.loads(await ws.recv())["type"] == "input_audio_buffer.cleared"
        assert mock.sessions[0].sent[1]["error"]["code"] is None


async def test_error_on_a_client_event_replaces_its_handling() -> None:
    limit = {
        "type": "invalid_request_error",
        "code": "rate_limit_exceeded",
        "message": "Rate limit reached.",
    }
    async with MockRealtimeServer(faults=Faults(error_on={"response.create": limit})) as mock:
        async with connect(mock.url + MODEL) as ws:
            c = Client(ws)
            await c.recv()
            await c.send({"type": "response.create"})
            err = await c.recv()
            assert err["type"] == "error" and err["error"]["code"] == "rate_limit_exceeded"
            await c.send({"type": "response.cancel"})
            assert (await c.recv())["error"]["code"] == "response_cancel_not_active"  # none started
        assert "response.created" not in types(mock.sessions[0].sent)


async def test_session_time_limit_expires_and_closes() -> None:
    async with MockRealtimeServer(faults=Faults(session_time_limit_s=0.2)) as mock:
        async with connect(mock.url + MODEL) as ws:
            c = Client(ws)
            await c.recv()
            err = await c.recv(timeout=unit(5))
            with pytest.raises(ConnectionClosed) as closed:
                await c.recv()
        assert err["error"]["code"] == "session_expired"
        assert err["error"]["message"] == "Your session hit the maximum duration of 60 minutes."
        assert closed.value.rcvd is not None
        session = await mock.wait_for_session()
        await session.wait_closed(unit(5))
        assert session.closed and not session.dropped


async def test_realtime_pace_streams_at_the_given_factor() -> None:
    text = "Pacing test sentence for the mock."
    scenario = Scenario([Rule(Match.any(), Reply.say(text, pace=4.0, chunk_ms=100))])
    async with MockRealtimeServer(scenario) as mock, connect(mock.url + MODEL, max_size=None) as ws:
        c = Client(ws)
        await c.recv()
        await c.send({"type": "response.create"})
        loop = asyncio.get_running_loop()
        first = last = 0.0
        audio = 0
        while True:
            event = await c.recv()
            if event["type"] == "response.output_audio.delta":
                last = loop.time()
                first = first or last
                audio += len(base64.b64decode(event["delta"]))
            if event["type"] == "response.done":
                break
    audio_s = audio / 48000
    chunk_s = 0.1
    # the last chunk is due (audio - one chunk) / factor after the first
    assert last - first >= (audio_s - chunk_s) / 4.0 * 0.9
    assert last - first < audio_s  # and faster than real time


async def _connect_and_count(mock: MockRealtimeServer) -> int:
    """Open a connection, ask for a response, read until the mock drops it; events seen."""
    async with connect(mock.url + MODEL, max_size=None, max_queue=None) as ws:
        c = Client(ws)
        await c.recv()
        await c.send({"type": "response.create"})
        with pytest.raises(ConnectionClosed):
            while True:
                await c.recv()
        return len(c.events)


async def test_seeded_drop_points_repeat_and_differ_per_connection() -> None:
    faults = Faults(drop_between=(2, 12), seed=5)
    points = [faults.drop_point(n) for n in range(6)]
    assert points == [Faults(drop_between=(2, 12), seed=5).drop_point(n) for n in range(6)]
    assert all(p is not None and 2 <= p <= 12 for p in points)
    assert len(set(points)) > 1
    scenario = Scenario([Rule(Match.any(), Reply.text("one two three four five six seven"))])
    async with MockRealtimeServer(scenario, faults=faults) as mock:
        seen = [await _connect_and_count(mock) for _ in range(2)]
    assert seen == points[:2]
    assert [len(s.sent) for s in mock.sessions] == points[:2]


async def test_only_the_first_faulty_connections_are_dropped() -> None:
    scenario = Scenario([Rule(Match.any(), Reply.text("one two"))])
    faults = Faults(drop_after_events=3, faulty_connections=1)
    async with MockRealtimeServer(scenario, faults=faults) as mock:
        assert await _connect_and_count(mock) == 3
        async with connect(mock.url + MODEL, max_size=None) as ws:
            c = Client(ws)
            await c.recv()
            await c.send({"type": "response.create"})
            while (await c.recv())["type"] != "response.done":
                pass
    assert mock.sessions[0].dropped and not mock.sessions[1].dropped


async def test_a_frozen_connection_goes_silent_and_stops_answering_pings() -> None:
    scenario = Scenario([Rule(Match.any(), Reply.text("one two three four"))])
    async with MockRealtimeServer(scenario, faults=Faults(freeze_after_events=3)) as mock:
        async with connect(mock.url + MODEL, max_size=None, close_timeout=0.1) as ws:
            c = Client(ws)
            await c.recv()
            await c.send({"type": "response.create"})
            await c.recv()
            await c.recv()
            pong = await ws.ping()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await pong
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await c.recv()
        assert mock.sessions[0].frozen and len(mock.sessions[0].sent) == 3


async def test_a_stalled_reply_waits_for_a_cancel() -> None:
    scenario = Scenario([Rule(Match.any(), Reply.text("one two three four"))])
    async with (
        MockRealtimeServer(scenario, faults=Faults(stall_responses=1)) as mock,
        connect(mock.url + MODEL, max_size=None) as ws,
    ):
        c = Client(ws)
        await c.recv()
        await c.send({"type": "response.create"})
        while (await c.recv())["type"] != "response.output_text.delta":
            pass
        with pytest.raises(TimeoutError):  # frozen after its first delta
            async with asyncio.timeout(0.3):
                await c.recv()
        await c.send({"type": "response.cancel"})
        while (done := await c.recv())["type"] != "response.done":
            pass
        assert done["response"]["status"] == "cancelled"
        await c.send({"type": "response.create"})  # the next reply streams whole
        while (done := await c.recv())["type"] != "response.done":
            pass
        assert done["response"]["status"] == "completed"


async def test_an_ignored_turn_gets_no_response_and_the_next_one_does() -> None:
    speech = synthesize("hello there", 24000) + bytes(24000)  # then 0.5 s of silence

    async def say(c: Client) -> None:
        for start in range(0, len(speech), 4800):
            chunk = base64.b64encode(speech[start : start + 4800]).decode()
            await c.send({"type": "input_audio_buffer.append", "audio": chunk})

    async with (
        MockRealtimeServer(faults=Faults(ignore_turns=1)) as mock,
        connect(mock.url + MODEL, max_size=None) as ws,
    ):
        c = Client(ws)
        await c.recv()
        await say(c)
        await mock.wait_for_server_event("input_audio_buffer.committed", timeout=unit(5))
        assert not any(e["type"] == "response.created" for e in mock.sessions[0].sent)
        await say(c)
        await mock.wait_for_server_event("input_audio_buffer.committed", count=2, timeout=unit(5))
        await mock.wait_for_server_event("response.created", timeout=unit(5))


def test_fault_knobs_refuse_nonsense() -> None:
    for bad in (
        {"drop_between": (5, 2)},
        {"freeze_after_events": -1},
        {"faulty_connections": -1},
        {"stall_responses": -1},
    ):
        with pytest.raises(ValueError):
            Faults(**bad)  # type: ignore[arg-type]
