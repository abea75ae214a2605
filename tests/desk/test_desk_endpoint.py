"""The desk endpoint on real PortAudio streams through a PulseAudio null sink: what it plays
comes out of the sink, heard positions come from the output callback, its own echo never
reaches the model, and a user talking over it is a local barge-in with an exact cut."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.desk.conftest import close_up

from foreman.audio.echo_gate import level_db
from foreman.audio.formats import PCM16_24K, PCMU_8K
from foreman.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from foreman.audio.wav import resample_pcm16
from foreman.endpoints.desk import DeskEndpoint
from foreman.endpoints.interface import Drained, EndpointEvent, Heard, HungUp
from foreman.exceptions import ConversationEnded
from foreman.io.sound import Capture, list_devices, resolve_device
from foreman.testing.pulse import PulseNullSink
from foreman.testing.timeouts import unit
from foreman.testing.voices import flite_speech, have_flite

pytestmark = pytest.mark.skipif(not have_flite(), reason="flite is not installed")
RATE = 16000


class Tap:
    """The desk microphone as the desk service shares it: one real capture stream."""

    def __init__(self) -> None:
        self.capture = Capture(resolve_device("", "input", list_devices()), RATE)
        self.consumer: Any = None

    def attach(self, consumer: Any) -> None:
        self.consumer = consumer
        self.capture.start(lambda block: self.consumer and self.consumer(block))

    def detach(self, consumer: Any) -> None:
        self.capture.stop()


class User:
    """The session's side: what the model would get, and the events."""

    def __init__(self) -> None:
        self.audio_in: list[bytes] = []
        self.events: asyncio.Queue[EndpointEvent] = asyncio.Queue()
        self.arrived = asyncio.Event()  # a microphone block came (every 20 ms)

    async def audio(self, audio: bytes) -> None:
        self.audio_in.append(audio)
        self.arrived.set()

    async def audio_b64(self, audio_b64: str) -> None:
        raise AssertionError("the desk sends raw PCM")

    def event(self, event: EndpointEvent) -> None:
        self.events.put_nowait(event)


def loud_s(pcm16: bytes) -> float:
    """Seconds of 20 ms blocks above -40 dBFS."""
    return 0.02 * sum(level_db(pcm16[i : i + 640]) > -40 for i in range(0, len(pcm16), 640))


async def until(user: User, predicate: Any, seconds: float) -> None:
    """Wait for `predicate`, checked at each microphone block the session side receives."""
    async with asyncio.timeout(unit(seconds)):
        while not predicate():
            user.arrived.clear()
            await user.arrived.wait()


async def start(endpoint: DeskEndpoint, user: User) -> asyncio.TaskGroup:
    tg = asyncio.TaskGroup()
    await tg.__aenter__()
    await endpoint.run(tg, user)
    return tg


async def stop(endpoint: DeskEndpoint, tg: asyncio.TaskGroup) -> None:
    await endpoint.hang_up("test over")
    await tg.__aexit__(None, None, None)
    await endpoint.close()


@pytest.mark.parametrize("fmt", [PCM16_24K, PCMU_8K], ids=["pcm16", "g711_ulaw"])
async def test_plays_out_of_the_sink_and_reports_drained(pulse: PulseNullSink, fmt: Any) -> None:
    speech = flite_speech("the assistant is speaking to you now", "slt", 24000)
    audio = speech if fmt is PCM16_24K else pcm16_to_ulaw(resample_pcm16(speech, 24000, 8000))
    recorder = pulse.record(RATE)
    tap, user = Tap(), User()
    endpoint = DeskEndpoint(tap, resolve_device("", "output", list_devices()), input_rate=RATE)
    endpoint.set_output_format(fmt)
    tg = await start(endpoint, user)
    endpoint.play("seg-1", audio)
    endpoint.end_segment("seg-1")
    assert endpoint.playing
    async with asyncio.timeout(unit(15)):
        while not isinstance(await user.events.get(), Drained):
            pass
    assert not endpoint.playing
    await stop(endpoint, tg)
    recorder.terminate()
    heard = recorder.communicate()[0]
    # The sink played the speech: as much of it is loud as in what was queued.
    queued = speech if fmt is PCM16_24K else resample_pcm16(ulaw_to_pcm16(audio), 8000, 24000)
    expected = loud_s(resample_pcm16(queued, 24000, RATE))
    assert 0.8 * expected <= loud_s(heard) <= 1.2 * expected
    assert endpoint.status()["played_ms"] >= 0.95 * len(speech) / 48


async def test_own_echo_is_gated_and_a_loud_user_barges_in_exactly(pulse: PulseNullSink) -> None:
    reply = flite_speech(
        "here is a long answer that goes on for a while so that you can interrupt it", "awb", 24000
    )
    tap, user = Tap(), User()
    endpoint = DeskEndpoint(
        tap, resolve_device("", "output", list_devices()), input_rate=RATE, echo_guard_db=3.0
    )
    barged = asyncio.Event()
    cut: list[Heard | None] = []

    async def on_user_speech() -> None:
        cut.append(await endpoint.flush())
        barged.set()

    endpoint.on_user_speech = on_user_speech
    endpoint.set_output_format(PCM16_24K)
    tg = await start(endpoint, user)
    endpoint.play("seg-1", reply)
    endpoint.end_segment("seg-1")
    await until(user, lambda: endpoint.status()["played_ms"] >= 1000, 10)
    assert not barged.is_set()  # a second of its own voice at the microphone: no barge-in
    gated = endpoint.gate.gated_frames
    assert gated >= 30
    # The model got silence for those frames, not the echo.
    assert max(level_db(b) for b in user.audio_in[-20:]) < -100
    pulse.play(close_up(flite_speech("stop, stop, wait a moment", "rms", RATE)), RATE)
    async with asyncio.timeout(unit(10)):
        await barged.wait()
    (heard,) = cut
    assert heard is not None and heard.segment == "seg-1"
    played = endpoint.status()["played_ms"]
    assert 1000 <= heard.ms <= played + 40  # where the device really was, to the block
    assert heard.ms < len(reply) / 48 - 300  # and well before the end of the reply
    assert not endpoint.playing
    # After the cut the user's speech reaches the model.
    await until(user, lambda: level_db(user.audio_in[-1]) > -40, 5)
    await stop(endpoint, tg)
    assert isinstance(await user.events.get(), HungUp)


async def test_silence_for_the_idle_timeout_ends_the_session(pulse: PulseNullSink) -> None:
    tap, user = Tap(), User()
    endpoint = DeskEndpoint(
        tap, resolve_device("", "output", list_devices()), input_rate=RATE, idle_timeout_s=0.5
    )
    endpoint.set_output_format(PCM16_24K)
    with pytest.raises(ExceptionGroup) as ended:
        async with asyncio.timeout(unit(10)), asyncio.TaskGroup() as tg:
            await endpoint.run(tg, user)
            endpoint.play("seg-1", flite_speech("one moment", "slt", 24000))
            endpoint.end_segment("seg-1")
    await endpoint.close()
    (reason,) = ended.value.exceptions
    assert isinstance(reason, ConversationEnded) and reason.reason == "idle: no speech for 0.5 s"
    # Not while the assistant was talking: the speech played in full first.
    assert (
        endpoint.status()["played_ms"] >= 0.95 * len(flite_speech("one moment", "slt", 24000)) / 48
    )


async def test_servers_listing_devices_at_once_never_see_portaudio_restarting(
    pulse: PulseNullSink,
) -> None:
    """Each server start lists the devices, restarting PortAudio to re-read them; several in
    one process (a test run, a supervisor) must not meet it half restarted."""
    lists = await asyncio.gather(*(asyncio.to_thread(list_devices) for _ in range(12)))
    assert all(any(d.outputs for d in devices) for devices in lists)
