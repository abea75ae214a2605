"""The OpenAI Realtime backend against the bundled mock over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import numpy as np
import pydantic
import pytest
from openai.types.realtime import RealtimeClientEvent

from foreman.audio.formats import PCM16_24K, PCMU_8K, AudioFormat
from foreman.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from foreman.backends import interface as b
from foreman.backends.openai_realtime import OpenAIRealtimeBackend
from foreman.config import settings_from_dict
from foreman.protocols.realtime.wire_formats import format_to_wire
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit
from foreman.tools.request import ToolRequest

CLIENT_EVENT = pydantic.TypeAdapter(
    Annotated[RealtimeClientEvent, pydantic.Field(discriminator="type")]
)


def assert_no_extras(model: Any, where: str = "") -> None:
    """Walk a validated SDK model: no field it does not know (catches beta leakage)."""
    if isinstance(model, pydantic.BaseModel):
        assert not model.model_extra, f"unknown fields at {where or 'top'}: {model.model_extra}"
        for name in type(model).model_fields:
            assert_no_extras(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list | tuple):
        for i, v in enumerate(model):
            assert_no_extras(v, f"{where}[{i}]")
    elif isinstance(model, dict):
        for k, v in model.items():
            assert_no_extras(v, f"{where}.{k}")


def assert_conformant(events: list[dict[str, Any]]) -> None:
    assert events
    for event in events:
        assert_no_extras(CLIENT_EVENT.validate_python(event), event["type"])


def backend_for(
    url: str, fmt: AudioFormat = PCM16_24K, tools: list[dict] | None = None, **rt: Any
) -> OpenAIRealtimeBackend:
    settings = settings_from_dict({"realtime": {"endpoint": url, **rt}})
    options = b.BackendOptions(
        model="gpt-realtime-2.1",
        endpoint=url,
        voice="marin",
        instructions="Be brief.",
        input_format=fmt,
        output_format=fmt,
        tools=tuple(tools or []),
    )
    return OpenAIRealtimeBackend(options, settings.realtime)


async def collect_until(
    events: AsyncIterator[b.BackendEvent], kind: type, out: list[b.BackendEvent]
) -> Any:
    async with asyncio.timeout(unit(10)):
        async for event in events:
            out.append(event)
            if isinstance(event, kind):
                return event
    raise AssertionError(f"stream ended before {kind.__name__}")


SMS_TOOL = {
    "type": "function",
    "name": "send_sms",
    "description": "Send an SMS.",
    "parameters": {
        "type": "object",
        "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
        "required": ["to", "body"],
    },
}


async def test_phone_turn_in_pcmu_with_real_speech_and_conformant_events() -> None:
    scenario = Scenario([Rule(Match.audio(1), Reply.say("Sure, happy to help with that."))])
    async with MockRealtimeServer(scenario) as mock:
        backend = backend_for(mock.url, PCMU_8K, tools=[SMS_TOOL])
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        speech = pcm16_to_ulaw(synthesize("hello, can you help me please", 8000))
        silence = b"\xff" * 8000  # 1 s of µ-law silence so server VAD ends the turn

        async def talk() -> None:
            audio = b"\xff" * 1600 + speech + silence
            for i in range(0, len(audio), 160):
                await backend.push_audio(audio[i : i + 160])

        pusher = asyncio.create_task(talk())
        await collect_until(events, b.ReplyEnded, seen)
        await pusher
        kinds = [type(e) for e in seen]
        assert kinds[0] is b.Ready
        assert (
            kinds.index(b.UserSpeechStarted)
            < kinds.index(b.UserSpeechStopped)
            < kinds.index(b.AssistantAudio)
        )
        audio = b"".join(e.audio for e in seen if isinstance(e, b.AssistantAudio))
        pcm = np.frombuffer(ulaw_to_pcm16(audio), dtype="<i2").astype(np.float64)
        assert len(audio) > 4000 and np.sqrt(np.mean(pcm**2)) > 200  # speech, not silence
        final = [
            e
            for e in seen
            if isinstance(e, b.TranscriptSegment) and e.final and e.role == "assistant"
        ]
        assert final and final[0].text == "Sure, happy to help with that."
        await backend.close()
        assert_conformant(mock.sessions[-1].received)
        update = mock.sessions[-1].received[0]["session"]
        assert update["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert update["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
        assert update["tools"][0]["name"] == "send_sms"


async def test_barge_in_truncate_never_claims_more_than_received() -> None:
    scenario = Scenario([Rule(Match.user_text("story"), Reply.say("Once upon a time " * 6))])
    async with MockRealtimeServer(scenario) as mock:
        backend = backend_for(mock.url)
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        await backend.send_user_text("tell me a story")
        done = await collect_until(events, b.ReplyEnded, seen)
        assert done.status == "completed"
        item = next(e for e in seen if isinstance(e, b.AssistantAudio)).segment
        received_ms = sum(len(e.audio) for e in seen if isinstance(e, b.AssistantAudio)) // 48
        # The caller "heard" more than was ever sent: the truncate must be clamped.
        await backend.report_heard(item, received_ms + 5000)
        await backend.report_heard(item, 300)
        truncated = await mock.wait_for_client_event(
            "conversation.item.truncate", count=1, timeout=unit(5)
        )
        assert truncated["audio_end_ms"] == 300
        # no response is active, so neither interrupt sent response.cancel
        assert not [e for e in mock.sessions[-1].received if e["type"] == "response.cancel"]
        sent = mock.sessions[-1].sent
        await backend.close()
        assert not [e for e in sent if e["type"] == "error"], "the server must not complain"
        assert_conformant(mock.sessions[-1].received)


async def test_tool_result_during_a_response_defers_response_create() -> None:
    scenario = Scenario(
        [
            Rule(
                Match.user_text("text my wife"),
                Reply.call("send_sms", {"to": "+15005550006", "body": "late"}),
            ),
            Rule(Match.tool("send_sms"), Reply.say("Your message is sent.")),
        ]
    )
    async with MockRealtimeServer(scenario) as mock:
        backend = backend_for(mock.url, tools=[SMS_TOOL])
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        await backend.send_user_text("text my wife I am late")
        request = await collect_until(events, b.ToolRequest, seen)
        assert request.name == "send_sms"
        assert json.loads(request.arguments) == {"to": "+15005550006", "body": "late"}
        # The response that made the call may still be open: the create must wait for it.
        await backend.submit_tool_result(request.call_id, json.dumps({"status": "sent"}))
        await collect_until(events, b.ReplyEnded, seen)  # the call's response
        await collect_until(events, b.ReplyEnded, seen)  # the follow-up
        texts = [e.text for e in seen if isinstance(e, b.TranscriptSegment) and e.final]
        assert texts[-1] == "Your message is sent."
        sent = mock.sessions[-1].sent
        await backend.close()
        assert not [e for e in sent if e["type"] == "error"]
        assert_conformant(mock.sessions[-1].received)


@pytest.mark.parametrize("fmt", [PCM16_24K, PCMU_8K, AudioFormat.from_name("g711_alaw")])
async def test_every_format_configures(fmt: AudioFormat) -> None:
    async with MockRealtimeServer() as mock:
        backend = backend_for(mock.url, fmt)
        await backend.start()
        assert (backend.status().provider_session_id or "").startswith("sess_")
        await backend.close()
        assert mock.sessions[-1].received[0]["session"]["audio"]["output"][
            "format"
        ] == format_to_wire(fmt)


async def test_illegal_event_sequence_ends_the_session_with_a_reason() -> None:
    async with MockRealtimeServer() as mock:
        backend = backend_for(mock.url)
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        session = await mock.wait_for_session()
        await mock.inject(
            {
                "type": "session.created",
                "event_id": "evt_x",
                "session": {"type": "realtime", "id": "sess_again"},
            },
            session,
        )
        closed = await collect_until(events, b.Closed, seen)
        assert closed.error is not None and closed.error.startswith("protocol error:")
        await backend.close()


async def test_malformed_frame_is_skipped_and_the_session_goes_on() -> None:
    async with MockRealtimeServer() as mock:
        backend = backend_for(mock.url)
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        session = await mock.wait_for_session()
        # a known event missing its required fields: the peer broke the protocol, once
        await mock.inject({"type": "input_audio_buffer.speech_started", "event_id": "e1"}, session)
        await mock.inject(
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": "e2",
                "item_id": "item_1",
                "audio_start_ms": 40,
            },
            session,
        )
        started = await collect_until(events, b.UserSpeechStarted, seen)
        assert started == b.UserSpeechStarted(40)
        await backend.close()


async def test_status_note_speaks_when_idle_and_waits_while_the_assistant_talks() -> None:
    scenario = Scenario([Rule(Match.user_text("story"), Reply.say("Once upon a time " * 4))])
    async with MockRealtimeServer(scenario) as mock:
        backend = backend_for(mock.url)
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        await backend.add_note("status", "The SMS waits for approval.")  # idle: speak now
        await collect_until(events, b.AssistantIdle, seen)
        await backend.send_user_text("tell me a story")
        await collect_until(events, b.ReplyStarted, seen)
        await backend.add_note("status", "Still waiting.")  # talking: read with what follows
        await collect_until(events, b.AssistantIdle, seen)
        received = mock.sessions[-1].received
        creates = [e for e in received if e["type"] == "response.create"]
        notes = [
            e["item"]["content"][0]["text"]
            for e in received
            if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
        ]
        assert notes == ["The SMS waits for approval.", "Still waiting."]
        assert len(creates) == 2  # one for the first note, one for the story; none for the second
        await backend.close()
        assert_conformant(received)


async def test_idle_comes_only_after_the_follow_up_of_a_tool_result() -> None:
    scenario = Scenario(
        [
            Rule(Match.user_text("time"), Reply.call("get_time", {})),
            Rule(Match.tool("get_time"), Reply.say("It is noon.")),
        ]
    )
    async with MockRealtimeServer(scenario) as mock:
        backend = backend_for(mock.url)
        await backend.start()
        events = backend.events()
        seen: list[b.BackendEvent] = []
        await backend.send_user_text("what time is it")
        request = await collect_until(events, ToolRequest, seen)
        await backend.submit_tool_result(request.call_id, '{"ok": true, "result": "12:00"}')
        await collect_until(events, b.AssistantIdle, seen)
        await backend.close()
    kinds = [type(e).__name__ for e in seen]
    # the idle comes after the follow-up's reply, never between the call and the answer
    last_reply_end = max(i for i, k in enumerate(kinds) if k == "ReplyEnded")
    assert kinds.count("ReplyEnded") == 2 and kinds[-1] == "AssistantIdle"
    assert last_reply_end == len(kinds) - 2
    texts = [e.text for e in seen if isinstance(e, b.TranscriptSegment) and e.final]
    assert texts[-1] == "It is noon."


async def test_instruction_note_asks_for_a_response_with_those_instructions() -> None:
    async with MockRealtimeServer() as mock:
        backend = backend_for(mock.url)
        await backend.start()
        await backend.add_note("instruction", "Greet the caller by name.")
        create = await mock.wait_for_client_event("response.create", timeout=unit(5))
        assert create["response"]["instructions"] == "Greet the caller by name."
        await backend.close()


@pytest.mark.parametrize(("turns", "ended"), [("none", True), ("server_vad", False)])
async def test_push_to_talk_release_commits_only_with_manual_turns(turns: str, ended: bool) -> None:
    async with MockRealtimeServer() as mock:
        backend = backend_for(mock.url, turn_detection={"type": turns})
        await backend.start()
        await backend.push_audio(b"\x00\x00" * 2400)  # 100 ms
        assert await backend.end_user_turn() is ended
        if ended:
            await mock.wait_for_client_event("input_audio_buffer.commit", timeout=unit(5))
            await mock.wait_for_client_event("response.create", timeout=unit(5))
        await backend.close()
        kinds = [e["type"] for e in mock.sessions[-1].received]
        assert ("input_audio_buffer.commit" in kinds) is ended
