"""The GPT-Live backend against the Live mock, without a session: the handshake, the
greeting spoken on a continuous track, replies inferred from it, delegated tool calls
answered once and continued once, a typed turn, and a clean close with final usage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from live_stack import live_backend

from foreman.backends import interface as b
from foreman.exceptions import BackendError
from foreman.testing.mock_realtime import Call, Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.timeouts import unit
from foreman.tools.request import ToolRequest

TOOLS = (
    {
        "type": "function",
        "name": "get_time",
        "description": "The time now.",
        "parameters": {"type": "object", "properties": {}},
    },
)
SCENARIO = Scenario(
    [
        Rule(Match(instructions="Greet"), Reply.say("Hello.")),
        Rule(Match.user_text("time"), Reply.say("Let me check.").then(Call.of("get_time"))),
        Rule(Match.tool("get_time"), Reply.say("It is noon.")),
    ]
)


async def collect_until(
    events: AsyncIterator[b.BackendEvent], done: type, seen: list[b.BackendEvent]
) -> b.BackendEvent:
    async with asyncio.timeout(unit(15)):
        async for event in events:
            seen.append(event)
            if isinstance(event, done):
                return event
    raise AssertionError(f"no {done.__name__}")


async def test_the_greeting_is_one_reply_between_filler_then_idle() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        backend = live_backend(mock.live_url, greeting="Greet the caller.")
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        ready = await anext(events)
        assert isinstance(ready, b.Ready) and ready.provider_session_id.startswith("live_")
        await collect_until(events, b.AssistantIdle, seen)
        started = [e for e in seen if isinstance(e, b.ReplyStarted)]
        ended = [e for e in seen if isinstance(e, b.ReplyEnded)]
        assert len(started) == 1 and [e.reply for e in ended] == [started[0].reply]
        text = "".join(
            e.text for e in seen if isinstance(e, b.TranscriptSegment) and e.role == "assistant"
        )
        assert text == "Hello."
        audio = [e for e in seen if isinstance(e, b.AssistantAudio)]
        assert audio and all(a.reply == started[0].reply for a in audio)
        after = await collect_until(events, b.AssistantAudio, [])
        assert after == b.AssistantAudio(after.audio, "", "")  # then filler: nobody talks
        assert set(after.audio) == {0xFF}  # µ-law digital silence
        session = mock.live_sessions[0]
        start = session.received[0]
        assert start["type"] == "session.start"
        assert start["session"]["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}
        greeting = await mock.wait_for_live(
            lambda: next(
                (e for e in session.received if e["type"] == "session.instructions.append"), None
            )
        )
        assert greeting == {
            "type": "session.instructions.append",
            "content": "Greet the caller.",
            "delegation_id": None,
        }
        await backend.close()
        assert backend.status().usage["final"] is True
        assert session.sent[-1]["type"] == "session.closed"


async def test_a_typed_turn_delegates_a_tool_answered_once_then_continued_once() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        backend = live_backend(mock.live_url, tools=TOOLS)
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        await backend.send_user_text("what time is it")
        request = await collect_until(events, ToolRequest, seen)
        assert isinstance(request, ToolRequest) and request.name == "get_time"
        await backend.submit_tool_result(request.call_id, '{"time": "12:00"}')
        seen.clear()
        await collect_until(events, b.AssistantIdle, seen)
        text = "".join(
            e.text for e in seen if isinstance(e, b.TranscriptSegment) and e.role == "assistant"
        )
        assert "It is noon." in text
        session = mock.live_sessions[0]
        sent_types = [
            e["type"] for e in session.received if e["type"] != "session.input_audio.append"
        ]
        # one output for the call, then exactly one continuation
        assert sent_types.count("response.create") == 2  # the typed turn, the continuation
        outputs = [e for e in session.received if e["type"] == "response.item.create"]
        assert [o["item"]["type"] for o in outputs] == ["message", "function_call_output"]
        assert outputs[1]["item"]["call_id"] == request.call_id
        # a second output for the same call is stale: nothing more is sent
        await backend.submit_tool_result(request.call_id, "{}")
        assert backend.status().counters["stale_outputs"] == 1
        await backend.close()


async def test_a_startup_error_is_one_line_and_no_session() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        backend = live_backend(mock.live_url)
        backend._live.session_config["turn_detection"] = {"type": "server_vad"}  # a Realtime field
        try:
            await backend.start()
        except BackendError as exc:
            assert "unknown_parameter" in str(exc) and "turn_detection" in str(exc)
        else:
            raise AssertionError("a Realtime field in session.start must be refused")
        mock.live_sessions[0].received.clear()  # the bad frame was ours on purpose


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def test_a_reply_nobody_listens_to_gets_a_corrective_instruction() -> None:
    story = "Once upon a time there was a very long story that took ages to tell."
    scenario = Scenario([Rule(Match.user_text("story"), Reply.say(story))])
    async with MockRealtimeServer(scenario) as mock:
        backend = live_backend(mock.live_url)
        await backend.start()
        events = backend.events()
        await backend.report_heard(None, None)  # nothing playing: nothing to say
        await backend.send_user_text("tell a story")
        await collect_until(events, b.ReplyStarted, [])
        await backend.report_heard(None, None)
        session = mock.live_sessions[0]
        note = await mock.wait_for_live(
            lambda: next(
                (e for e in session.received if e["type"] == "session.instructions.append"), None
            )
        )
        assert "Stop talking" in note["content"] and note["delegation_id"] is None
        assert [e["type"] for e in session.received].count("session.instructions.append") == 1
        await backend.close()


async def test_a_format_live_lacks_is_a_one_line_start_error() -> None:
    from foreman.audio.formats import AudioFormat

    backend = live_backend(
        "ws://127.0.0.1:9/v1/live/sessions", fmt=AudioFormat.from_name("pcm16", 8000)
    )
    try:
        await backend.start()  # refused before any connection is tried
    except BackendError as exc:
        assert "16000 or 24000" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("PCM16 at 8 kHz is not a GPT-Live format")
