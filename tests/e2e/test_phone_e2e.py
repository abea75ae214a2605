"""End to end: fake Twilio caller <-> foreman (uvicorn, real backend) <-> mock Realtime."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest
import websockets
from phone_stack import Stack, phone_stack

from foreman.audio.g711 import ulaw_decode
from foreman.audio.playback import parse_mark_name
from foreman.config import IdentityConfig
from foreman.testing.mock_realtime import Call, Match, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

GREETING = "Hi, Foreman here."
LONG_ANSWER = (
    "Tomorrow will be sunny in the morning with a light breeze from the west, "
    "clouds in the afternoon, and a chance of rain in the evening after six."
)


def rms(ulaw: bytes) -> float:
    pcm = ulaw_decode(ulaw).astype(np.float64)
    return float(np.sqrt(np.mean(pcm**2))) if len(pcm) else 0.0


def mock_audio(stack: Stack, session_index: int, item_id: str | None = None) -> bytes:
    """Every audio byte the mock sent in one session (optionally for one item)."""
    s = stack.mock.sessions[session_index]
    return b"".join(
        base64.b64decode(e["delta"])
        for e in s.sent
        if e["type"] == "response.output_audio.delta" and item_id in (None, e["item_id"])
    )


async def bus_event(stack: Stack, kind: str, pred=lambda d: True, timeout: float = 10.0):  # type: ignore[no-untyped-def]  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
    async with asyncio.timeout(unit(timeout)):
        while True:
            ev = await stack.events.get()
            if ev.kind == kind and pred(ev.data):
                return ev.data


async def test_conversation_barge_in_and_end_call() -> None:
    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say(GREETING)),
            Rule(Match.audio(1), Reply.say(LONG_ANSWER, pace=1.0, chunk_ms=100)),
            Rule(Match.audio(2), Reply.say("Goodbye!").then(Call.of("end_call", {}))),
        ]
    )
    rt = {"turn_detection": {"interrupt_response": False, "silence_duration_ms": 800}}
    async with phone_stack(scenario, realtime=rt) as stack:
        caller = stack.caller(continuous_silence=True)
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            # The greeting plays: real speech reaches the caller.
            greeting = mock_audio_len = 0
            await stack.mock.wait_for_server_event("response.done", timeout=unit(10))
            greeting = mock_audio(stack, 0)
            mock_audio_len = len(greeting)
            await caller.wait_played_ms(mock_audio_len // 8, timeout=unit(15))
            assert bytes(caller.played[:mock_audio_len]) == greeting
            assert rms(greeting) > 500
            said = await bus_event(stack, "session.transcript", lambda d: d["role"] == "assistant")
            assert said["text"] == GREETING

            # The caller speaks; the assistant answers in real time.
            await caller.play_speech(synthesize("Weather tomorrow?", 8000))
            started = await stack.mock.wait_for_server_event(
                "response.created", count=2, timeout=unit(10)
            )
            answer_id = (
                await stack.mock.wait_for_server_event(
                    "response.output_item.added", count=2, timeout=unit(10)
                )
            )["item"]["id"]
            assert started
            await caller.wait_played_ms(mock_audio_len // 8 + 600, timeout=unit(15))

            # Barge-in: the caller talks over the answer.
            await caller.play_speech(synthesize("Stop please.", 8000))
            await caller.wait_for("clear", timeout=unit(10))
            truncate = await stack.mock.wait_for_client_event(
                "conversation.item.truncate", timeout=unit(10)
            )
            assert truncate["item_id"] == answer_id
            played = [
                m.cumulative_ms
                for m in map(parse_mark_name, caller.marks_echoed)
                if m is not None and m.item_id == answer_id
            ]
            # Exactly a position the caller's played marks confirmed (the newest one the
            # server had received: under load an echo or two may still be in flight), so
            # never more than the caller heard, and well into the answer.
            answer_played_ms = caller.played_ms - mock_audio_len / 8
            assert truncate["audio_end_ms"] in played, (truncate, played)
            assert 100 <= truncate["audio_end_ms"] <= answer_played_ms
            await stack.mock.wait_for_client_event("response.cancel", timeout=unit(5))
            assert not any(
                parse_mark_name(n) and parse_mark_name(n).item_id != answer_id  # type: ignore[union-attr]
                for n in caller.marks_dropped
            )
            # After the clear, nothing more of the interrupted answer is played.
            answer_sent = len(mock_audio(stack, 0, answer_id))
            assert truncate["audio_end_ms"] * 8 < answer_sent

            # The caller says goodbye; the model says goodbye and calls end_call.
            hangup = await stack.rest.wait_for("hangup", timeout=unit(20))
            assert hangup == [caller.call_sid]
            await caller.wait_closed(timeout=unit(5))
            bye_item = (
                await stack.mock.wait_for_server_event(
                    "response.output_item.added", count=3, timeout=unit(5)
                )
            )["item"]["id"]
            bye = mock_audio(stack, 0, bye_item)
            assert bytes(caller.played).find(bye[: len(bye) // 160 * 160]) > 0  # heard in full
            assert caller.validation_errors == []
        rec = await bus_event(stack, "call.recorded")
        assert rec["call_sid"] == caller.call_sid and rec["reason"].startswith("end_call")


async def test_dtmf_reaches_the_model() -> None:
    scenario = Scenario([Rule(Match.any(), Reply.say("Hi."))])
    async with phone_stack(scenario) as stack, stack.caller() as caller:
        await caller.dial()
        await caller.send_dtmf("5")
        item = await stack.mock.wait_for_client_event(
            "conversation.item.create",
            predicate=lambda e: "pressed 5" in str(e["item"]),
            timeout=unit(5),
        )
        assert item["item"]["role"] == "system"  # a fact for the model, not words said
        data = await bus_event(stack, "session.dtmf")
        assert data["digit"] == "5"


async def test_twenty_simultaneous_calls_each_get_their_own_audio() -> None:
    n = 20
    names = [f"Caller{i:02d}" for i in range(n)]
    numbers = [f"+1555000{i:04d}" for i in range(n)]
    words = ["zero one", "two three", "four five", "six seven", "eight nine"]
    rules = [
        Rule(Match(instructions=name), Reply.say(f"Hello {words[i % 5]}, call number {i}."))
        for i, name in enumerate(names)
    ]
    ident = IdentityConfig(contacts=dict(zip(names, numbers, strict=True)))
    async with phone_stack(Scenario(rules), identity=ident) as stack:
        callers = [stack.caller(from_=num) for num in numbers]
        try:
            await asyncio.gather(*(c.dial() for c in callers))
            await stack.mock.wait_for_server_event("response.done", count=n, timeout=unit(20))
            by_name = {}
            for idx, s in enumerate(stack.mock.sessions):
                create = next(e for e in s.received if e["type"] == "response.create")
                by_name[create["response"]["instructions"]] = idx
            heard = []
            for name, caller in zip(names, callers, strict=True):
                idx = next(v for k, v in by_name.items() if name in k)
                sent = mock_audio(stack, idx)
                await caller.wait_played_ms(len(sent) // 8, timeout=unit(20))
                assert bytes(caller.played[: len(sent)]) == sent
                assert caller.validation_errors == []
                heard.append(bytes(caller.played[: len(sent)]))
            assert len(set(heard)) == n  # twenty different greetings
            assert len(stack.twilio.registry) == n
        finally:
            await asyncio.gather(*(c.aclose() for c in callers))
        async with asyncio.timeout(unit(10)):
            while len(stack.twilio.registry):
                await bus_event(stack, "call.recorded")
        # every model session was closed with its call
        await asyncio.gather(*(s.wait_closed(timeout=unit(5)) for s in stack.mock.sessions))


async def test_bad_signature_403_and_reused_token_refused() -> None:
    async with phone_stack(Scenario()) as stack:
        caller = stack.caller()
        r = await caller.post_voice_webhook(signature="bm9wZQ==")
        assert r.status_code == 403
        r = await caller.post_voice_webhook(signature=None)
        assert r.status_code == 403
        async with caller:
            await caller.dial()
            await stack.mock.wait_for_session(timeout=unit(5))
            # Someone replays the same stream URL, parameters and token.
            replay = stack.caller(call_sid=caller.call_sid)
            async with replay:
                await replay.open_stream(caller.stream_url or "", caller.parameters)
                await replay.wait_closed(timeout=unit(5))
                assert replay.close_code == 1008
            # A bad upgrade signature is refused before the socket opens.
            forged = stack.caller()
            with pytest.raises(websockets.InvalidStatus) as err:
                await forged.open_stream(
                    caller.stream_url or "", caller.parameters, signature="bm9wZQ=="
                )
            assert err.value.response.status_code == 403
            await forged.aclose()
        assert len(stack.mock.sessions) == 1


async def test_outbound_call_through_rest_and_back() -> None:
    scenario = Scenario([Rule(Match(instructions="Introduce"), Reply.say("Hi, this is Foreman."))])
    async with phone_stack(scenario) as stack:
        import httpx

        async with httpx.AsyncClient(base_url=stack.base) as http:
            r = await http.post(
                "/api/calls", json={"to": "+15550001234", "purpose": "remind about rent"}
            )
        assert r.status_code == 201, r.text
        (placed,) = await stack.rest.wait_for("call", timeout=unit(5))
        callee = stack.caller(call_sid=placed["sid"], from_="+15550009999", to="+15550001234")
        async with callee:
            await callee.answer(placed["twiml"])
            await stack.mock.wait_for_server_event("response.done", timeout=unit(10))
            sent = mock_audio(stack, 0)
            await callee.wait_played_ms(len(sent) // 8, timeout=unit(10))
            assert bytes(callee.played[: len(sent)]) == sent and rms(sent) > 500
            update = next(
                e for e in stack.mock.sessions[0].received if e["type"] == "session.update"
            )
            assert "remind about rent" in update["session"]["instructions"]


async def test_end_call_through_the_tool_dispatcher_waits_for_the_goodbye(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scenario = Scenario(
        [
            Rule(
                Match(instructions="Greet"),
                Reply.say("Hello Godfather. Goodbye for now.").then(
                    Call.of("end_call", {"reason": "nothing to do"})
                ),
            )
        ]
    )
    owner = "+15550000100"
    ident = IdentityConfig(owner_numbers=[owner])
    async with phone_stack(scenario, identity=ident, tools_db=str(tmp_path / "audit.db")) as stack:
        caller = stack.caller(from_=owner)
        played_at_hangup: list[int] = []

        async def on_hangup() -> None:
            played_at_hangup.append(len(caller.played))
            await caller.remote_hangup()

        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, on_hangup)
            update = await stack.mock.wait_for_client_event("session.update", timeout=unit(5))
            offered = {t["name"] for t in update["session"]["tools"]}
            assert {"end_call", "get_time", "send_sms"} <= offered  # the owner is offered all
            assert "Godfather" in update["session"]["instructions"]
            output = await stack.mock.wait_for_client_event(
                "conversation.item.create",
                predicate=lambda e: e["item"]["type"] == "function_call_output",
                timeout=unit(10),
            )
            assert "ending" in output["item"]["output"]
            assert await stack.rest.wait_for("hangup", timeout=unit(15)) == [caller.call_sid]
            await caller.wait_closed(timeout=unit(5))
        goodbye = mock_audio(stack, 0)
        assert played_at_hangup and played_at_hangup[0] >= len(goodbye)  # heard in full
        rec = await bus_event(stack, "call.recorded")
        assert (
            rec["role"] == "owner"
            and rec["verified"]
            and rec["reason"] == "end_call: nothing to do"
        )


async def test_pcm16_model_audio_is_resampled_both_ways() -> None:
    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say(GREETING)),
            Rule(Match.audio(1), Reply.say("I heard you loud and clear.")),
        ]
    )
    pcm16 = {"model_audio": "pcm16"}
    async with (
        phone_stack(scenario, twilio=pcm16) as stack,
        stack.caller(continuous_silence=True) as caller,
    ):
        await caller.dial()
        update = await stack.mock.wait_for_client_event("session.update", timeout=unit(5))
        audio = update["session"]["audio"]
        assert audio["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert audio["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
        await stack.mock.wait_for_server_event("response.done", timeout=unit(10))
        pcm24 = mock_audio(stack, 0)  # 24 kHz PCM16 from the model
        expect = len(pcm24) // 6  # µ-law bytes at 8 kHz
        await caller.wait_played_ms(expect // 8 - 40, timeout=unit(15))
        heard = bytes(caller.played[: expect - 320])
        ref = np.frombuffer(pcm24, "<i2").astype(np.float64)
        ratio = rms(heard) / float(np.sqrt(np.mean(ref**2)))
        assert 0.6 < ratio < 1.4  # the same speech, resampled, not noise or silence
        # The caller's speech reaches the model's VAD through the 8k -> 24k path.
        await caller.play_speech(synthesize("Can you hear me now?", 8000))
        started = await stack.mock.wait_for_server_event(
            "input_audio_buffer.speech_started", timeout=unit(10)
        )
        assert started["audio_start_ms"] >= 0
        await stack.mock.wait_for_server_event("response.done", count=2, timeout=unit(10))
        assert caller.validation_errors == []
