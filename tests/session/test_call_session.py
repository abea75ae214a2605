"""CallSession beyond test_call_scenarios.py: audio paths, DTMF, transcripts, tools, faults."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
from call_harness import CALL_SID, Call, EndCallDispatcher, speech_ulaw, until

from foreman.audio import g711
from foreman.audio.playback import parse_mark_name
from foreman.config import IdentityConfig
from foreman.policy.context import Channel, Role
from foreman.testing.fake_backend import FakeBackend
from foreman.testing.speech import synthesize
from foreman.tools.request import ToolRequest


async def test_ulaw_passthrough_forwards_the_base64_text_untouched() -> None:
    async with Call() as call:
        speech = speech_ulaw()[:1600]
        call.tw.feed_media(speech)
        await call.backend.wait_until(lambda: len(call.backend.pushed_b64) == 10)
        expected = [base64.b64encode(speech[i : i + 160]).decode() for i in range(0, 1600, 160)]
        assert call.backend.pushed_b64 == expected
        assert call.backend.pushed == []  # no decoded copy went anywhere
        assert call.endpoint.stats.media_in == 10


async def test_ulaw_without_b64_fast_path_pushes_bytes() -> None:
    async with Call(passthrough_b64=False) as call:
        speech = speech_ulaw()[:800]
        call.tw.feed_media(speech)
        await call.backend.wait_until(lambda: len(call.backend.pushed) == 5)
        assert b"".join(call.backend.pushed) == speech


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


async def test_pcm16_mode_converts_caller_audio_to_24k() -> None:
    async with Call(model_audio="pcm16") as call:
        speech = speech_ulaw()[:8000]  # 1 s
        call.tw.feed_media(speech)
        await call.backend.wait_until(lambda: sum(map(len, call.backend.pushed)) >= 40_000)
        await until(lambda: call.endpoint.stats.media_in == 50)
        pcm = np.frombuffer(b"".join(call.backend.pushed), "<i2")
        # 1 s at 24 kHz, less the resampler's start-up delay
        assert 22_000 <= len(pcm) <= 24_000
        # the same speech: energy close to the 8 kHz original's
        ref = g711.ulaw_decode(speech)
        assert 0.7 < _rms(pcm) / _rms(ref) < 1.3
        assert call.backend.pushed_b64 == []


async def test_pcm16_mode_converts_model_audio_to_whole_ulaw_frames() -> None:
    async with Call(model_audio="pcm16") as call:
        pcm24 = synthesize("This answer comes from the model at twenty four kilohertz.", 24000)
        pcm24 = pcm24[: 24000 * 2]  # 1 s
        call.backend.reply("resp_1")
        for i in range(0, len(pcm24), 4800):  # 100 ms deltas
            call.backend.audio("item_A", pcm24[i : i + 4800], reply="resp_1")
        call.backend.segment_done("item_A")
        await call.tw.wait_until(lambda: len(call.tw.media_payload) >= 7900)
        sizes = [len(base64.b64decode(m["media"]["payload"])) for m in call.tw.events("media")]
        assert all(s % 160 == 0 for s in sizes)
        out = g711.ulaw_decode(call.tw.media_payload)
        assert 7900 <= len(out) <= 8160
        ref = np.frombuffer(pcm24, "<i2")
        assert 0.7 < _rms(out) / _rms(ref) < 1.3
        # what the marks claim as sent never exceeds the model's 1000 ms
        last = parse_mark_name(call.tw.marks[-1])
        assert last is not None and 950 <= last.cumulative_ms <= 1000


async def test_ragged_deltas_become_whole_frames_and_only_real_audio_counts() -> None:
    async with Call() as call:
        audio = speech_ulaw()[:1000]
        call.backend.reply("resp_1")
        call.backend.audio("item_A", audio[:333], reply="resp_1")
        call.backend.audio("item_A", audio[333:], reply="resp_1")
        call.backend.segment_done("item_A")
        await call.tw.wait_until(lambda: len(call.tw.media_payload) == 1120)
        payload = call.tw.media_payload
        assert payload[:1000] == audio and payload[1000:] == b"\xff" * 120
        # the marks count real audio only: 1000 bytes = 125 ms, not the padded 1120
        assert parse_mark_name(call.tw.marks[-1]).cumulative_ms == 125  # type: ignore[union-attr]


async def test_dtmf_reaches_the_model_and_the_bus() -> None:
    async with Call() as call:
        call.tw.feed_dtmf("5")
        data = await call.bus_event("session.dtmf")
        assert data["digit"] == "5" and data["session_id"] == f"call-{CALL_SID}"
        await call.backend.wait_until(lambda: call.backend.notes)
        assert call.backend.notes == [("context", "The caller pressed 5.")]


async def test_transcripts_go_to_bus_and_user_finals_to_the_dispatcher() -> None:
    disp = EndCallDispatcher()
    async with Call(dispatcher=disp) as call:
        call.backend.transcript("user", "What", final=False)  # pieces, then the final text
        call.backend.transcript("user", "What time is it?")
        call.backend.transcript("assistant", "It is noon.")
        first = await call.bus_event("session.transcript")
        second = await call.bus_event("session.transcript")
        assert (first["role"], first["text"]) == ("user", "What time is it?")
        assert (second["role"], second["text"]) == ("assistant", "It is noon.")
        assert disp.transcripts == ["What time is it?"]


async def test_tool_requests_run_concurrently_through_the_dispatcher() -> None:
    gate = asyncio.Event()

    class SlowDispatcher(EndCallDispatcher):
        async def handle(self, request: ToolRequest, session) -> None:  # type: ignore[override]
            self.handled.append(request)
            if request.name == "slow":
                await gate.wait()
            await session.send_tool_result(request.call_id, f'"{request.name} done"')

    disp = SlowDispatcher()
    async with Call(dispatcher=disp) as call:
        call.backend.tool_call("slow", call_id="c1")
        call.backend.tool_call("fast", call_id="c2")
        await call.backend.wait_until(lambda: call.backend.tool_results)
        assert call.backend.tool_results == [("c2", '"fast done"', True)]  # not stuck behind
        gate.set()
        await call.backend.wait_until(lambda: len(call.backend.tool_results) == 2)
        assert [r.name for r in disp.handled] == ["slow", "fast"]
        assert call.session.ctx.channel is Channel.PHONE


async def test_without_dispatcher_end_call_still_hangs_up() -> None:
    call = Call()
    async with call:
        call.backend.tool_call("end_call")
        assert await call.result() == "end_call"
    assert call.backend.tool_results == [("call_1", '{"ok": true}', False)]


async def test_backend_closing_ends_the_call_with_its_reason() -> None:
    call = Call()
    async with call:
        call.backend.drop("keepalive ping timeout")
        assert await call.result() == "backend closed: keepalive ping timeout"
    assert call.tw.closed == (1000, "call ended")


async def test_a_crash_in_one_call_ends_only_that_call() -> None:
    class Boom(Exception):
        pass

    class Exploding(FakeBackend):
        async def push_audio_b64(self, audio_b64: str) -> None:
            raise Boom("decoder exploded")

    bad, good = Call(backend=Exploding()), Call()
    async with bad, good:
        bad.tw.feed_media(speech_ulaw()[:160])
        reason = await bad.result()
        assert reason == "error: Boom: decoder exploded"
        assert bad.backend.closed and bad.tw.closed is not None
        good.tw.feed_media(speech_ulaw()[:320])
        await good.backend.wait_until(lambda: len(good.backend.pushed_b64) == 2)
        assert good.task is not None and not good.task.done()


async def test_notify_model_is_a_status_note_the_backend_voices() -> None:
    async with Call() as call:
        await call.session.notify_model("The SMS is waiting for the owner's approval.")
        assert call.backend.notes == [("status", "The SMS is waiting for the owner's approval.")]


async def test_caller_role_goes_into_the_session_context() -> None:
    ident = IdentityConfig(owner_numbers=["+1 (555) 000-0009"], contacts={"Ann": "+15550000002"})
    owner = Call(caller="+15550000009", identity=ident)
    contact = Call(caller="+15550000002", identity=ident)
    stranger = Call(caller="+15550000003", identity=ident)
    assert owner.session.ctx.role is Role.OWNER and owner.session.ctx.caller_name == "Godfather"
    assert contact.session.ctx.role is Role.CONTACT and contact.session.ctx.caller_name == "Ann"
    assert stranger.session.ctx.role is Role.UNKNOWN


async def test_a_backend_with_final_texts_never_closes_an_utterance_from_its_pieces() -> None:
    """Realtime streams transcription deltas, then the completed text: one utterance, even
    when the assistant starts talking before the user's final text arrives."""
    disp = EndCallDispatcher()
    async with Call(dispatcher=disp) as call:
        seen = call.bus.subscribe(kinds=("session.transcript",))
        call.backend.transcript("user", "What", final=False)
        call.backend.transcript("assistant", "It", final=False, reply="r1")
        call.backend.transcript("user", "What time is it?")
        call.backend.transcript("assistant", "It is noon.", reply="r1")
        await call.sync()
        lines = []
        while (event := seen.get_nowait()) is not None:
            if event.kind == "session.transcript":
                lines.append((event.data["role"], event.data["text"]))
    assert lines == [("user", "What time is it?"), ("assistant", "It is noon.")]
    assert disp.transcripts == ["What time is it?"]
