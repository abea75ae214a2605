"""The desk assistant's runner: the microphone, the wake sentinel and the switch to voice.

Text mode at rest. The microphone (when there is one) feeds the `WakeSentinel`; its speech
segments go, one at a time, to the phrase recogniser in a task of this service (blocking
engines run in threads inside the recogniser). The phrase heard starts the owner's voice
session through the `SessionRegistry` (the same start as `POST /api/realtime/start`), with
the desk speaker as its endpoint and what was said after the phrase as its first audio.
No model connection exists until then. While voice runs, the microphone belongs to the
session (the sentinel is paused, so the assistant cannot wake itself); when it ends
(`end_call`, a stop, the idle timeout) the sentinel listens again after the cooldown.

`POST /api/wake/feed` runs a WAV through the same sentinel and recogniser, for tests and
for a machine without a microphone. Every change is on the event bus (`wake.*`, `mode`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from foreman.audio.convert import Converter, build_plan
from foreman.audio.formats import AudioFormat, Encoding
from foreman.audio.wake import NotThePhrase, Recognise, SentinelEvent, WakeSentinel, Woken
from foreman.audio.wav import read_wav, resample_pcm16
from foreman.bus import EventBus
from foreman.config import Settings
from foreman.desk.recognisers import (
    RATE,
    PhraseRecogniser,
    RecogniserUnavailable,
    build_recogniser,
)
from foreman.endpoints.desk import DeskEndpoint
from foreman.endpoints.interface import AudioEndpoint
from foreman.events import WakeChanged, WakeHeard, WakeTriggered
from foreman.exceptions import BackendError, ForemanError
from foreman.io.sound import Capture, Device, SoundUnavailable, list_devices, resolve_device
from foreman.session.conversation import ConversationSession
from foreman.session.registry import SessionRegistry, StartRejected, StartRequest

log = logging.getLogger("foreman.desk")

__all__ = ["DeskService", "FeedResult", "WakeUnavailable"]

FEED_FRAME_MS = 20


class WakeUnavailable(ForemanError):
    """The sentinel cannot take audio now (off, or voice mode runs): HTTP 409."""


@dataclass(frozen=True)
class FeedResult:
    segments: int
    heard: list[str]
    woke: bool


class DeskService:
    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        sessions: SessionRegistry,
        *,
        recogniser: PhraseRecogniser | None = None,
    ) -> None:
        self.settings = settings
        self.voice = settings.voice
        self.bus = bus
        self.sessions = sessions
        self.recogniser = recogniser
        self.enabled = settings.voice.wake_enabled
        self.sentinel = WakeSentinel(
            settings.voice.wake_phrase,
            RATE,
            pre_roll_ms=settings.voice.wake_pre_roll_ms,
            max_segment_ms=int(settings.voice.wake_max_segment_s * 1000),
            cooldown_s=settings.voice.wake_cooldown_s,
        )
        self.input_rate = settings.realtime.audio_in_hz
        self.microphone: Device | None = None
        self.speaker: Device | None = None
        self.audio_error: str | None = None
        self.last_error: str | None = None
        self.last_trigger: dict[str, Any] | None = None
        self.triggers = 0
        self.false_starts = 0
        self._capture: Capture | None = None
        self._to_sentinel: Converter = build_plan(_pcm(self.input_rate), _pcm(RATE))
        self._consumer: Callable[[bytes], None] | None = None  # a voice session's endpoint
        self._work: asyncio.Queue[Recognise] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._feeding = False
        self._settled = asyncio.Event()  # no segment waits for its recogniser
        self._settled.set()
        self._heard_log: list[str] = []

    # --- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Find the devices and the recogniser; start listening. Never raises: what is
        missing is a one-line `audio_error`/`last_error` and one log line (debug for no sound
        device, normal on a phone server; a warning for a microphone that will not open), and
        the server runs."""
        if self.settings.audio.enabled:
            try:
                devices = await asyncio.to_thread(list_devices)
                self.microphone = resolve_device(self.settings.audio.input_device, "input", devices)
                self.speaker = resolve_device(self.settings.audio.output_device, "output", devices)
            except SoundUnavailable as exc:
                self.audio_error = str(exc)
                # Normal on a server without a sound card (a phone line): GET /api/wake/status
                # and `foreman devices` say why; the log stays quiet.
                log.debug("desk audio off: %s", exc)
        if self.recogniser is None:
            try:
                self.recogniser = build_recogniser(self.settings)
            except RecogniserUnavailable as exc:
                self.last_error = str(exc)
                log.debug("wake sentinel off: %s", exc)
        if self.microphone is not None and self.speaker is not None:
            self.sessions.desk_audio = self
        self.sessions.mode_listeners.append(self._mode_changed)
        self._worker = asyncio.get_running_loop().create_task(self._recognise(), name="wake")
        if self.enabled:
            self._listen()

    async def aclose(self) -> None:
        with contextlib.suppress(ValueError):
            self.sessions.mode_listeners.remove(self._mode_changed)
        if self.sessions.desk_audio is self:
            self.sessions.desk_audio = None
        self._stop_capture()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.recogniser is not None:
            await self.recogniser.aclose()

    # --- the microphone ---------------------------------------------------------------------
    def _listen(self) -> None:
        if self.sessions.mode == "voice":
            self.sentinel.pause()
            return
        self.sentinel.resume(time.monotonic(), cooldown=False)
        self._start_capture()

    def _start_capture(self) -> None:
        if self._capture is not None or self.microphone is None:
            return
        capture = Capture(self.microphone, self.input_rate, self.settings.audio.block_ms)
        try:
            capture.start(self._on_mic)
        except SoundUnavailable as exc:
            self.audio_error = str(exc)
            log.warning("microphone off: %s", exc)
            return
        self._capture = capture

    def _stop_capture(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.stop()

    def _on_mic(self, block: bytes) -> None:
        """A microphone block, on the loop: to the voice session, else to the sentinel."""
        if self._consumer is not None:
            self._consumer(block)
        elif not self._feeding and self.enabled:
            self._to_sentinel_audio(self._to_sentinel.convert(block))

    def _to_sentinel_audio(self, pcm16: bytes) -> None:
        if not pcm16:
            return
        for event in self.sentinel.feed(pcm16, time.monotonic()):
            self._handle(event)

    # MicrophoneTap, for the desk endpoint of a voice session
    def attach(self, consumer: Callable[[bytes], None]) -> None:
        self._consumer = consumer
        self._start_capture()

    def detach(self, consumer: Callable[[bytes], None]) -> None:
        if self._consumer == consumer:
            self._consumer = None
        if not self.enabled:
            self._stop_capture()

    def endpoint(self, follow_up: bytes = b"") -> AudioEndpoint | None:
        """The desk speaker endpoint for a new voice session (None: no devices)."""
        if self.microphone is None or self.speaker is None:
            return None
        audio = self.settings.audio
        return DeskEndpoint(
            self,
            self.speaker,
            input_rate=self.input_rate,
            block_ms=audio.block_ms,
            jitter_target_ms=audio.jitter_target_ms,
            jitter_max_ms=audio.jitter_max_ms,
            echo_guard_db=audio.echo_guard_db,
            idle_timeout_s=self.voice.idle_timeout_s,
            follow_up=follow_up,
        )

    # --- recognition -------------------------------------------------------------------------
    def _handle(self, event: SentinelEvent) -> None:
        if isinstance(event, Recognise):
            self._settled.clear()
            self._work.put_nowait(event)

    async def _recognise(self) -> None:
        while True:
            job = await self._work.get()
            try:
                await self._recognise_one(job)
            finally:
                if self._work.empty() and self.sentinel.pending == 0:
                    self._settled.set()

    async def _recognise_one(self, job: Recognise) -> None:
        if self.recogniser is None or self.sentinel.paused:
            self.sentinel.heard(job.segment, "", time.monotonic())
            return
        try:
            text = await self.recogniser.hear(job.audio, self.voice.wake_phrase)
        except Exception as exc:  # a recogniser failure never stops the sentinel
            self._fail(f"{self.recogniser.name}: {exc}")
            self.sentinel.heard(job.segment, "", time.monotonic())
            return
        if self.last_error is not None:
            self.last_error = None
        outcome = self.sentinel.heard(job.segment, text, time.monotonic())
        if text.strip():
            self._heard_log.append(text)
        if isinstance(outcome, Woken):
            await self._woken(outcome)
        elif isinstance(outcome, NotThePhrase) and text.strip():
            self.false_starts += 1
            self.bus.publish(WakeHeard(text, outcome.cooling_down))

    def _fail(self, message: str) -> None:
        self.last_error = " ".join(message.split())[:300]
        log.warning("wake: %s", self.last_error)
        self.bus.publish(WakeChanged(self.enabled, self.listening, self.last_error))

    async def _woken(self, woken: Woken) -> None:
        self.triggers += 1
        self.last_trigger = {"at": _iso(time.time()), "text": woken.text}
        name = self.recogniser.name if self.recogniser is not None else ""
        log.info("wake phrase heard (%s): %r", name, woken.text)
        self.bus.publish(WakeTriggered(woken.text, name))
        self.sentinel.pause()
        follow_up = woken.follow_up
        if self.input_rate != RATE:
            follow_up = resample_pcm16(follow_up, RATE, self.input_rate)
        try:
            await self.sessions.start_desk(StartRequest(), follow_up=follow_up)
        except (StartRejected, BackendError) as exc:
            self._fail(f"voice did not start: {exc}")
            self.sentinel.resume(time.monotonic())

    # --- modes -------------------------------------------------------------------------------
    def _mode_changed(self, mode: str, session: ConversationSession | None) -> None:
        if mode == "voice":
            self.sentinel.pause()
        else:
            self.sentinel.resume(time.monotonic())
            if not self.enabled and self._consumer is None:
                self._stop_capture()
        self.bus.publish(WakeChanged(self.enabled, self.listening, self.last_error))

    # --- the API -----------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        return (
            self.enabled
            and self.recogniser is not None
            and not self.sentinel.paused
            and self._capture is not None
        )

    def enable(self) -> dict[str, Any]:
        if not self.enabled:
            self.enabled = True
            self._listen()
            self.bus.publish(WakeChanged(True, self.listening, self.last_error))
        return self.status()

    def disable(self) -> dict[str, Any]:
        if self.enabled:
            self.enabled = False
            self.sentinel.pause()
            if self._consumer is None:
                self._stop_capture()
            self.bus.publish(WakeChanged(False, False, self.last_error))
        return self.status()

    async def feed(self, wav: bytes) -> FeedResult:
        """Run a WAV through the sentinel as if the microphone had heard it; returns once
        every segment in it was recognised (and voice started, if it woke)."""
        if not self.enabled:
            raise WakeUnavailable("wake is disabled; POST /api/wake/enable first")
        if self.recogniser is None:
            raise WakeUnavailable(f"no phrase recogniser: {self.last_error}")
        if self.sessions.mode == "voice":
            raise WakeUnavailable("voice mode is on: the sentinel is paused")
        pcm, rate = read_wav(wav)  # AudioFormatError: a one-line 400
        pcm = resample_pcm16(pcm, rate, RATE) if rate != RATE else pcm
        if self.sentinel.paused:
            self.sentinel.resume(time.monotonic(), cooldown=False)
        self._feeding = True
        triggers, heard_from = self.triggers, len(self._heard_log)
        segments_before = self.sentinel_segments
        try:
            step = RATE * FEED_FRAME_MS // 1000 * 2
            for i in range(0, len(pcm), step):
                self._to_sentinel_audio(pcm[i : i + step])
            # The end of the WAV is silence to the sentinel: a segment still open ends.
            self._to_sentinel_audio(bytes(RATE * 2))
            await self._settled.wait()
        finally:
            self._feeding = False
        return FeedResult(
            self.sentinel_segments - segments_before,
            self._heard_log[heard_from:],
            self.triggers > triggers,
        )

    @property
    def sentinel_segments(self) -> int:
        return self.sentinel.segments_seen

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "listening": self.listening,
            "detector": self.recogniser.name if self.recogniser is not None else None,
            "device": self.microphone.name if self.microphone is not None else None,
            "speaker": self.speaker.name if self.speaker is not None else None,
            "phrase": self.voice.wake_phrase,
            "mode": self.sessions.mode,
            "last_trigger": self.last_trigger,
            "triggers": self.triggers,
            "false_starts": self.false_starts,
            "last_error": self.last_error or self.audio_error,
        }


def _pcm(rate: int) -> AudioFormat:
    return AudioFormat(Encoding.PCM16, rate)


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
