"""End to end on real sound devices (a private PulseAudio null sink): the wake phrase played
into the sink wakes the sentinel listening on the microphone, a voice session starts against
the mock Realtime server with what was said after the phrase, the reply plays out of the
sink, the user talking over it cuts it (a local barge-in, truncated where the speaker really
was), and `end_call` returns to text mode with the sentinel listening again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from tests.desk.conftest import close_up

from foreman.api.app import create_app
from foreman.audio.echo_gate import level_db
from foreman.bus import EventBus
from foreman.config import settings_from_dict
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.mock_realtime.scenario import Call
from foreman.testing.pulse import PulseNullSink
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit
from foreman.testing.transcription_standin import TranscriptionStandIn
from foreman.testing.voices import flite_speech, have_flite, with_silence

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not have_flite(), reason="no flite")]
RATE = 16000
LONG_REPLY = (
    "It is half past nine in the morning, and here is a rather long answer about the day "
    "ahead, the weather outside, and everything on your calendar, so you can interrupt it."
)


class Recogniser:
    """The transcription stand-in's answers: the wake phrase for the first segment the
    microphone sends (checked to be real speech of the right length), nothing after."""

    def __init__(self) -> None:
        self.segments: list[float] = []

    def __call__(self, pcm16: bytes, rate: int, form: dict[str, str]) -> str:
        self.segments.append(len(pcm16) / 2 / rate)
        assert form["prompt"] == "hey vim" and level_db(pcm16) > -45
        return "Hey Vim." if len(self.segments) == 1 else "Goodbye."


async def next_kind(events: object, *kinds: str) -> dict[str, object]:
    async with asyncio.timeout(unit(30)):
        while True:
            published = await events.get()  # type: ignore[attr-defined]
            if published.kind in kinds:
                return {"kind": published.kind, **published.data}


async def test_wake_talk_barge_in_and_back_to_text(pulse: PulseNullSink, tmp_path: Path) -> None:
    scenario = Scenario(
        [
            Rule(Match.audio(1), Reply.say(LONG_REPLY, pace=1.0, chunk_ms=100)),
            Rule(Match.audio(2), Reply.say("Goodbye.").then(Call.of("end_call", {}))),
        ]
    )
    recogniser = Recogniser()
    async with (
        MockRealtimeServer(scenario) as mock,
        TranscriptionStandIn("sk-test", recogniser) as standin,
    ):
        s = settings_from_dict(
            {
                "realtime": {
                    "endpoint": mock.url,
                    "api_key_hosts": ["127.0.0.1"],
                    "audio_in_hz": 16000,
                },
                "voice": {
                    "wake_detector": "openai",
                    "transcription_base_url": standin.base_url,
                    "wake_cooldown_s": 1.0,
                },
                "audio": {"echo_guard_db": 3.0},
                "storage": {"db_path": str(tmp_path / "f.db")},
            }
        )
        s = s.replace(realtime=s.realtime.model_copy(update={"api_key": SecretStr("sk-test")}))
        bus = EventBus()
        events = bus.subscribe(
            maxsize=4096,
            kinds=("wake.triggered", "mode", "session.barge_in", "session.ended", "wake.changed"),
        )
        app = create_app(s, bus=bus)
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(20)) as api:
            st = (await api.get("/api/wake/status")).json()
            assert st["listening"] and st["device"] and st["speaker"], st
            wake = close_up(flite_speech("hey vim", "rms", RATE))
            player = pulse.play(with_silence(wake, RATE, 200, 200), RATE)

            triggered = await next_kind(events, "wake.triggered")
            assert triggered["text"] == "Hey Vim."
            assert (await next_kind(events, "mode"))["mode"] == "voice"
            assert 0.3 < recogniser.segments[0] < 2.0  # the phrase's segment, not the room
            session = app.state.sessions.desk
            assert session is not None and session.endpoint.kind == "speaker"
            await asyncio.to_thread(player.wait, unit(10))
            # Voice mode: the microphone goes to the model; the question gets the reply.
            pulse.play(close_up(flite_speech("what time is it", "slt", RATE)), RATE)
            endpoint = session.endpoint
            async with asyncio.timeout(unit(30)):
                while endpoint.status()["played_ms"] < 1500:
                    endpoint.block_played.clear()
                    await endpoint.block_played.wait()
            assert mock.sessions[-1].received  # a model session exists only now

            # Said over the reply, close to the microphone: louder than its echo.
            pulse.play(close_up(flite_speech("stop, goodbye", "awb", RATE), drive=10), RATE)
            barge = await next_kind(events, "session.barge_in")
            assert 1500 <= int(barge["heard_ms"]) < 9000
            ended = await next_kind(events, "session.ended")
            truncates = [
                e for e in mock.sessions[-1].received if e["type"] == "conversation.item.truncate"
            ]
            # The model was told where the speaker really was.
            assert [t["audio_end_ms"] for t in truncates] == [barge["heard_ms"]]
            assert ended["reason"] == "end_call", ended
            assert (await next_kind(events, "mode"))["mode"] == "text"
            st = (await api.get("/api/wake/status")).json()
            assert st["mode"] == "text" and st["triggers"] == 1 and st["listening"]
            # The reply came out of the sink: the microphone (its monitor) heard it as echo,
            # speech for most of what was played before the cut (pauses between words aside).
            echo = endpoint.status()["echo_frames"]
            assert echo * 0.02 >= 0.4 * int(barge["heard_ms"]) / 1000
