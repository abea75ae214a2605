"""Server VAD over real speech, spoken replies, barge-in."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from foreman.audio import g711
from foreman.audio.convert import build_plan
from foreman.audio.formats import PCM16_24K, PCMU_8K
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.speech import synthesize

from .conftest import Client, types

PHRASE = "hello there how are you"


def noise(ms: int, rate: int, seed: int) -> bytes:
    """Quiet room noise (about -64 dBFS), not digital zeros."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 20, rate * ms // 1000).astype("<i2").tobytes()


def speech_bounds_ms(pcm: bytes, rate: int, offset_ms: float) -> tuple[float, float]:
    """Where the speech truly is: first and last sample above 2% of the peak."""
    x = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.flatnonzero(x > 0.02 * x.max())
    return offset_ms + loud[0] * 1000 / rate, offset_ms + (loud[-1] + 1) * 1000 / rate


def utterance(
    rate: int, lead_ms: int = 1000, tail_ms: int = 1500, *, digital_silence: bool = False
) -> tuple[bytes, float, float]:
    """Speech with quiet noise (or digital silence) around it, and its true bounds in ms."""
    speech = synthesize(PHRASE, rate)
    start, end = speech_bounds_ms(speech, rate, lead_ms)
    if digital_silence:
        pad = bytes(2 * rate * lead_ms // 1000), bytes(2 * rate * tail_ms // 1000)
    else:
        pad = noise(lead_ms, rate, 1), noise(tail_ms, rate, 2)
    return pad[0] + speech + pad[1], start, end


def rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))


VAD = {"type": "server_vad", "prefix_padding_ms": 300, "silence_duration_ms": 500}


@pytest.mark.parametrize("digital_silence", [False, True], ids=["room-noise", "digital-silence"])
async def test_vad_reports_true_speech_bounds_then_answers(
    client: Client, digital_silence: bool
) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": VAD}}},
        }
    )
    await client.until("session.updated")
    audio, start_ms, end_ms = utterance(24000, digital_silence=digital_silence)
    await client.append(audio)
    events = await client.until("rate_limits.updated")
    names = types(events)
    assert names[:5] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    started, stopped, committed, added = events[:4]
    assert abs(started["audio_start_ms"] - (start_ms - 300)) <= 60, (started, start_ms)
    assert abs(stopped["audio_end_ms"] - end_ms) <= 60, (stopped, end_ms)
    assert started["item_id"] == stopped["item_id"] == committed["item_id"] == added["item"]["id"]
    assert added["item"]["role"] == "user"
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    assert names[5] == "response.created" and names[-2:] == ["response.done", "rate_limits.updated"]


async def test_vad_over_mulaw_input_uses_the_same_clock(client: Client) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": VAD}},
            },
        }
    )
    await client.until("session.updated")
    pcm24, start_ms, end_ms = utterance(24000)
    plan = build_plan(PCM16_24K, PCMU_8K)
    ulaw = plan.convert(pcm24) + plan.flush()
    await client.append(ulaw, chunk=800)
    events = await client.until("input_audio_buffer.speech_stopped")
    started, stopped = events[-2], events[-1]
    assert abs(started["audio_start_ms"] - (start_ms - 300)) <= 60
    assert abs(stopped["audio_end_ms"] - end_ms) <= 60


async def test_prefix_padding_is_clamped_at_zero(client: Client) -> None:
    vad = {**VAD, "prefix_padding_ms": 2000}
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": vad}}},
        }
    )
    await client.until("session.updated")
    audio, _, _ = utterance(24000, lead_ms=200)
    await client.append(audio)
    started = (await client.until("input_audio_buffer.speech_started"))[-1]
    assert started["audio_start_ms"] == 0


@pytest.mark.parametrize(
    "out_format",
    [{"type": "audio/pcm", "rate": 24000}, {"type": "audio/pcmu"}, {"type": "audio/pcma"}],
)
async def test_scripted_spoken_reply_is_real_audio_in_the_output_format(
    mock_realtime: MockRealtimeServer, client: Client, out_format: dict[str, object]
) -> None:
    text = "The weather in Paris is sunny today."
    mock_realtime.scenario = Scenario(
        [Rule(Match.user_text("weather"), Reply.say(text, chunk_ms=100))]
    )
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"format": out_format}}},
        }
    )
    await client.until("session.updated")
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What's the weather?"}],
            },
        }
    )
    await client.send({"type": "response.create"})
    events = await client.until("rate_limits.updated")
    names = types(events)
    # the live service's order, with transcript and audio deltas interleaved
    body = [
        n
        for n in names
        if n not in ("response.output_audio.delta", "response.output_audio_transcript.delta")
    ]
    assert body == [
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    deltas = [e for e in events if e["type"] == "response.output_audio.delta"]
    first_audio = names.index("response.output_audio.delta")
    assert names.index("response.output_audio_transcript.delta") < first_audio
    assert (
        names[first_audio + 1 :].count("response.output_audio_transcript.delta") >= 1
    )  # interleaved
    audio = b"".join(base64.b64decode(e["delta"]) for e in deltas)
    kind = out_format["type"]
    pcm = (
        audio
        if kind == "audio/pcm"
        else (g711.ulaw_to_pcm16(audio) if kind == "audio/pcmu" else g711.alaw_to_pcm16(audio))
    )
    rate = 24000 if kind == "audio/pcm" else 8000
    assert 1.0 < len(pcm) / 2 / rate < 6.0
    assert rms(pcm) > 300  # speech, not silence
    chunk = len(base64.b64decode(deltas[0]["delta"]))
    assert chunk == (4800 if kind == "audio/pcm" else 800)  # 100 ms
    done = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert done["transcript"] == text
    part = next(e for e in events if e["type"] == "response.content_part.added")
    assert part["part"] == {"type": "audio", "transcript": ""}
    final = events[-2]["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["content"] == [{"type": "output_audio", "transcript": text}]
    assert final["usage"]["output_token_details"]["audio_tokens"] > 0
    assert final["audio"]["output"]["format"] == out_format


async def test_barge_in_cancels_the_response_with_turn_detected(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    long = "This is a long answer that keeps going for quite a while so you can interrupt it."
    mock_realtime.scenario = Scenario(
        [Rule(Match.audio(1), Reply.say(long, pace=1.0)), Rule(Match.audio(2), Reply.say("Yes?"))]
    )
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": VAD}}},
        }
    )
    await client.until("session.updated")
    audio, _, _ = utterance(24000, lead_ms=300, tail_ms=700)
    await client.append(audio)
    first = await client.until("response.output_audio.delta")
    response_id = next(e for e in first if e["type"] == "response.created")["response"]["id"]
    await client.append(audio)  # the user talks over the assistant
    events = await client.until("response.done")
    names = types(events)
    assert "input_audio_buffer.speech_started" in names
    assert names.index("input_audio_buffer.speech_started") < names.index("response.done")
    done = events[-1]["response"]
    assert done["id"] == response_id and done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["output"][0]["status"] == "incomplete"
    # the interrupted turn's reply follows once the user stops
    rest = await client.until("response.done", timeout=10)
    assert rest[-1]["response"]["status"] == "completed"
    transcript = next(e for e in rest if e["type"] == "response.output_audio_transcript.done")
    assert transcript["transcript"] == "Yes?"


async def test_manual_commit_and_the_100ms_rule(client: Client) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )
    await client.until("session.updated")
    await client.append(synthesize(PHRASE, 24000)[: 48 * 50])  # 50 ms
    await client.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    err = (await client.until("error"))[-1]["error"]
    assert err["code"] == "input_audio_buffer_commit_empty" and err["event_id"] == "c1"
    assert "but buffer only has 50.00ms of audio" in err["message"]
    await client.append(synthesize(PHRASE, 24000))
    await client.send({"type": "input_audio_buffer.commit"})
    events = await client.until("conversation.item.done")
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    # no VAD events and no automatic response
    await client.send({"type": "input_audio_buffer.clear"})
    assert types(await client.until("input_audio_buffer.cleared")) == ["input_audio_buffer.cleared"]


async def test_input_transcription_uses_the_scripted_transcript(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    mock_realtime.scenario = Scenario(
        [Rule(Match.user_text("how are you"), Reply.text("Fine, thanks."))],
        transcripts={1: "Hello there, how are you?"},
    )
    transcription = {"model": "gpt-live-transcribe", "language": "en"}
    await client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {"input": {"turn_detection": VAD, "transcription": transcription}},
            },
        }
    )
    updated = (await client.until("session.updated"))[-1]
    assert updated["session"]["audio"]["input"]["transcription"]["model"] == "gpt-live-transcribe"
    audio, _, _ = utterance(24000)
    await client.append(audio)
    events = await client.until("response.done")
    names = types(events)
    done = next(
        e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    assert (
        done["item_id"] == committed["item_id"]
        and done["transcript"] == "Hello there, how are you?"
    )
    deltas = [
        e["delta"]
        for e in events
        if e["type"] == "conversation.item.input_audio_transcription.delta"
    ]
    assert "".join(deltas) == done["transcript"]
    assert done["usage"]["type"] == "duration" and done["usage"]["seconds"] > 1
    assert names.index("conversation.item.input_audio_transcription.completed") < names.index(
        "response.created"
    )
    # the rule matched the audio turn through its transcript
    assert (
        next(e for e in events if e["type"] == "response.output_text.done")["text"]
        == "Fine, thanks."
    )


async def test_idle_timeout_nudges_after_playback(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    mock_realtime.scenario = Scenario(
        [
            Rule(Match.audio(1), Reply.say("Hi.")),
            Rule(Match.audio(2), Reply.say("Are you still there?")),
        ]
    )
    vad = {**VAD, "idle_timeout_ms": 300}
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": vad}}},
        }
    )
    await client.until("session.updated")
    audio, _, _ = utterance(24000, lead_ms=300, tail_ms=700)
    await client.append(audio)
    await client.until("rate_limits.updated")
    loop = asyncio.get_running_loop()
    done_at = loop.time()
    events = await client.until("input_audio_buffer.timeout_triggered")
    assert loop.time() - done_at >= 0.3 * 0.9  # idle_timeout_ms after the audio played
    nudge = events[-1]
    assert nudge["audio_end_ms"] >= nudge["audio_start_ms"] >= 0
    rest = await client.until("response.done")
    names = types(rest)
    assert names[:3] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert rest[0]["item_id"] == nudge["item_id"]
    transcript = next(e for e in rest if e["type"] == "response.output_audio_transcript.done")
    assert transcript["transcript"] == "Are you still there?"
