"""The desk microphone and speaker as an `AudioEndpoint` of a conversation session.

* Microphone: the desk service owns the capture stream (it also feeds the wake sentinel) and
  routes its blocks here while a voice session runs (`MicrophoneTap`). Blocks arrive on the
  loop, PCM16 at `[realtime] audio_in_hz`, and go to the session after the echo gate.
* Speaker: the model's audio (`pcm16` or `g711_ulaw`, converted only when the device needs
  it) goes through a jitter buffer to the device's output callback (`SpeakerFeed`); each block
  it plays is reported back with `call_soon_threadsafe`, so heard positions come from the
  device, and a barge-in cut is exact to the block.
* Echo safety: half duplex (`EchoGate`): while the assistant speaks, the microphone reaches
  the model only when it is clearly the user, and that is a local barge-in (the session stops
  playback at once, without waiting for the model's turn detection).
* Idle: `idle_timeout_s` without speech either way ends the session (back to text mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from foreman.audio.convert import Converter, build_plan
from foreman.audio.echo_gate import EchoGate, level_db
from foreman.audio.formats import AudioFormat, Encoding
from foreman.endpoints.interface import Drained, EndpointEvent, Heard, HungUp, UserSide
from foreman.endpoints.speaker_feed import Played, SpeakerFeed
from foreman.exceptions import ConversationEnded
from foreman.io.sound import Device, Playback

__all__ = ["DeskEndpoint", "MicrophoneTap"]

MIC_QUEUE_BLOCKS = 50  # one second of 20 ms blocks; older ones go first if the loop lags


class MicrophoneTap(Protocol):
    """Where the desk's microphone blocks go while a voice session runs."""

    def attach(self, consumer: Callable[[bytes], None]) -> None: ...

    def detach(self, consumer: Callable[[bytes], None]) -> None: ...


class DeskEndpoint:
    kind = "speaker"

    def __init__(
        self,
        microphone: MicrophoneTap,
        speaker: Device,
        *,
        input_rate: int,
        block_ms: int = 20,
        jitter_target_ms: int = 60,
        jitter_max_ms: int = 4000,
        echo_guard_db: float = 6.0,
        idle_timeout_s: float = 0.0,
        follow_up: bytes = b"",
    ) -> None:
        self.input_format: AudioFormat | None = AudioFormat(Encoding.PCM16, input_rate)
        self.speaker = speaker
        self._mic = microphone
        self._block_ms = block_ms
        self._jitter = (jitter_target_ms, jitter_max_ms)
        self.gate = EchoGate(frame_ms=block_ms, guard_db=echo_guard_db)
        self._idle_s = idle_timeout_s
        self._follow_up = follow_up
        self.output_format: AudioFormat | None = None
        self._playback: Playback | None = None
        self._plan: Converter | None = None
        self._feed: SpeakerFeed | None = None
        self._items: asyncio.Queue[bytes | EndpointEvent] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ended = False
        self._last_activity = time.monotonic()
        # Set by whoever runs the session: stop the assistant now (a local barge-in).
        self.on_user_speech: Callable[[], Awaitable[None]] | None = None
        self.block_played: asyncio.Event | None = None  # set at each block played (observers)
        self.counters = {"mic_blocks": 0, "mic_dropped": 0, "played_ms": 0, "barge_ins": 0}

    # --- set-up ------------------------------------------------------------------------
    def set_output_format(self, fmt: AudioFormat) -> None:
        self.output_format = fmt

    async def run(self, tg: asyncio.TaskGroup, user: UserSide) -> None:
        fmt = self.output_format
        if fmt is None:
            raise ConversationEnded("the speaker was given no output format")
        self._loop = asyncio.get_running_loop()
        self.block_played = asyncio.Event()
        pcm_rate = fmt.sample_rate  # G.711 is decoded to PCM16 at its own 8 kHz
        self._feed = self._new_feed(pcm_rate)
        playback = Playback(self.speaker, pcm_rate, self._block_ms)
        device_rate = await asyncio.to_thread(playback.start, self._take)
        self._playback = playback
        if device_rate != pcm_rate:
            self._feed = self._new_feed(device_rate)
        self._plan = build_plan(fmt, AudioFormat(Encoding.PCM16, device_rate))
        if self._follow_up:
            self._items.put_nowait(self._follow_up)
            self._follow_up = b""
        self._mic.attach(self._on_mic)
        self._last_activity = time.monotonic()
        tg.create_task(self._read(user), name="desk-microphone")
        if self._idle_s > 0:
            tg.create_task(self._watch_idle(), name="desk-idle")

    def _new_feed(self, rate: int) -> SpeakerFeed:
        target, most = self._jitter
        return SpeakerFeed(AudioFormat(Encoding.PCM16, rate), self._block_ms, target, most)

    # --- the device threads' side --------------------------------------------------------
    def _take(self, nbytes: int) -> bytes:
        """PortAudio's output callback thread: never blocks, never touches loop objects."""
        feed = self._feed
        if feed is None:
            return bytes(nbytes)
        data, played = feed.take(nbytes)
        loop = self._loop
        if played is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed under a stopping stream
                loop.call_soon_threadsafe(self._on_played, played)
        return data

    # --- the loop's side -----------------------------------------------------------------
    def _on_mic(self, block: bytes) -> None:
        items = self._items
        if items.qsize() >= MIC_QUEUE_BLOCKS:  # the loop fell behind: the oldest goes
            with contextlib.suppress(asyncio.QueueEmpty):
                items.get_nowait()
            self.counters["mic_dropped"] += 1
        items.put_nowait(block)

    def _on_played(self, played: Played) -> None:
        self.gate.output(played.level_db)
        self._last_activity = time.monotonic()
        if self._feed is not None:
            self.counters["played_ms"] += int(
                self._feed.fmt.ms_for_bytes(sum(n for _, n in played.segments))
            )
        if played.drained:
            self._items.put_nowait(Drained())
        if self.block_played is not None:
            self.block_played.set()

    async def _read(self, user: UserSide) -> None:
        gate = self.gate
        items = self._items
        while True:
            item = await items.get()
            if type(item) is bytes:
                self.counters["mic_blocks"] += 1
                audio, over = gate.frame(item, self.playing)
                if over:
                    self.counters["barge_ins"] += 1
                    if self.on_user_speech is not None:
                        await self.on_user_speech()
                if not self.playing and gate.speech_level(level_db(item)):
                    self._last_activity = time.monotonic()
                await user.audio(audio)
                continue
            assert not isinstance(item, bytes)
            res = user.event(item)
            if res is not None:
                await res
            if isinstance(item, HungUp):
                return

    async def _watch_idle(self) -> None:
        while True:
            quiet_for = time.monotonic() - self._last_activity
            if self.playing:
                self._last_activity = time.monotonic()
            elif quiet_for >= self._idle_s:
                raise ConversationEnded(f"idle: no speech for {self._idle_s:g} s")
            await asyncio.sleep(max(0.05, min(1.0, self._idle_s - quiet_for)))

    # --- the session's commands ------------------------------------------------------------
    def play(self, segment: str, audio: bytes) -> None:
        if self._feed is None or self._plan is None:
            return
        pcm = self._plan.convert(audio)
        if pcm:
            self._feed.push(segment, pcm)

    def end_segment(self, segment: str) -> None:
        if self._feed is not None:
            self._feed.end_of_stream()

    async def flush(self) -> Heard | None:
        if self._feed is None:
            return None
        if self._plan is not None:
            self._plan.reset()
        cut = self._feed.cut()
        if cut is None:
            return None
        segment, heard = cut
        return Heard(segment, int(self._feed.fmt.ms_for_bytes(heard)))

    @property
    def playing(self) -> bool:
        return self._feed is not None and self._feed.playing

    async def apologize(self) -> None:
        return None  # the owner sees the error in status and on the event stream

    async def hang_up(self, reason: str) -> None:
        if not self._ended:
            self._ended = True
            self._items.put_nowait(HungUp(reason))

    async def close(self) -> None:
        self._ended = True
        self._mic.detach(self._on_mic)
        playback, self._playback = self._playback, None
        if playback is not None:
            await asyncio.to_thread(playback.stop)

    def status(self) -> dict[str, Any]:
        feed = self._feed.stats if self._feed is not None else {}
        return {
            **self.counters,
            **feed,
            "gated_frames": self.gate.gated_frames,
            "echo_frames": self.gate.echo_frames,
            "speaker": self.speaker.name,
        }
