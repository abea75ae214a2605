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
from foreman.backends import base as b
from foreman.backends.openai_realtime import OpenAIRealtimeBackend
from foreman.config import settings_from_dict
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit

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
        tools=tools or [],
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
        await collect_until(events, b.ResponseDone, seen)
        await pusher
        kinds = [type(e) for e in seen]
        assert kinds[0] is b.Ready
        assert kinds.index(b.SpeechStarted) < kinds.index(b.SpeechStopped) < kinds.index(b.AudioOut)
        audio = b"".join(e.audio for e in seen if isinstance(e, b.AudioOut))
        pcm = np.frombuffer(ulaw_to_pcm16(audio), dtype="<i2").astype(np.float64)
        assert len(audio) > 4000 and np.sqrt(np.mean(pcm**2)) > 200  # speech, not silence
        final = [
            e for e in seen if isinstance(e, b.Transcript) and e.final and e.role == "assistant"
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
        await backend.add_context("user", "tell me a story")
        await backend.request_response()
        done = await collect_until(events, b.ResponseDone, seen)
        assert done.status == "completed"
        item = next(e for e in seen if isinstance(e, b.AudioOut)).item_id
        received_ms = sum(len(e.audio) for e in seen if isinstance(e, b.AudioOut)) // 48
        # The caller "heard" more than was ever sent: the truncate must be clamped.
        await backend.interrupt(item, received_ms + 5000, cancel=True)
        await backend.interrupt(item, 300, cancel=True)
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
        await backend.add_context("user", "text my wife I am late")
        await backend.request_response()
        request = await collect_until(events, b.ToolRequest, seen)
        assert request.name == "send_sms"
        assert json.loads(request.arguments) == {"to": "+15005550006", "body": "late"}
        # The response that made the call may still be open: the create must wait for it.
        await backend.send_tool_result(request.call_id, json.dumps({"status": "sent"}))
        await collect_until(events, b.ResponseDone, seen)  # the call's response
        await collect_until(events, b.ResponseDone, seen)  # the follow-up
        texts = [e.text for e in seen if isinstance(e, b.Transcript) and e.final]
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
        assert backend.status()["session_id"].startswith("sess_")
        await backend.close()
        assert (
            mock.sessions[-1].received[0]["session"]["audio"]["output"]["format"]
            == fmt.to_realtime()
        )


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
        started = await collect_until(events, b.SpeechStarted, seen)
        assert started == b.SpeechStarted(40, "item_1")
        await backend.close()
