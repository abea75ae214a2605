"""In-memory `VoiceBackend`s for fast session tests (no sockets, no model).

`FakeBackend` is turn-based like Realtime: script what the "model" does with the emit
helpers (`reply`, `audio`, `speech_started`, `tool_call`, ...) and assert on what the
session did (`pushed`, `heard`, `tool_results`, `notes`). `wait_until(pred)` waits for the
session to act, without sleeps.

    backend = FakeBackend()
    backend.reply("r1")
    backend.audio("seg_A", chunk, reply="r1")
    await backend.wait_until(lambda: backend.heard)

`ContinuousFakeBackend` behaves like GPT-Live: one continuous output track paced in real
time with silence between replies, barge-in handled by the "model" itself, no replies the
session can cancel, transcripts as pieces that are never final, and input that must keep
flowing. It proves that session logic does not depend on turns.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from foreman.audio.formats import PCMU_8K, AudioFormat
from foreman.audio.jitter import silence_byte
from foreman.backends.interface import (
    AssistantAudio,
    AssistantIdle,
    BackendEvent,
    BackendOptions,
    BackendStatus,
    Capabilities,
    Closed,
    NoteKind,
    Ready,
    ReplyEnded,
    ReplyStarted,
    SegmentEnded,
    TranscriptSegment,
    UserSpeechStarted,
    UserSpeechStopped,
)
from foreman.exceptions import BackendError
from foreman.tools.request import ToolRequest

__all__ = ["ContinuousFakeBackend", "FakeBackend", "FakeBackendFactory", "Heard"]


@dataclass(frozen=True, slots=True)
class Heard:
    """A `report_heard` call: where the session said playback stopped."""

    segment: str | None
    heard_ms: int | None


@dataclass
class FakeBackend:
    """Scriptable turn-based backend (Realtime-like capabilities by default)."""

    input_format: AudioFormat = PCMU_8K
    output_format: AudioFormat = PCMU_8K
    options: BackendOptions | None = None
    fail_start: str | None = None  # start() raises BackendError(fail_start)
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(b64_passthrough=True))
    started: bool = False
    closed: bool = False
    pushed: list[bytes] = field(default_factory=list)
    pushed_b64: list[str] = field(default_factory=list)
    heard: list[Heard] = field(default_factory=list)
    tool_results: list[tuple[str, str, bool]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    user_texts: list[str] = field(default_factory=list)
    turn_ends: int = 0

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[BackendEvent] = asyncio.Queue()
        self._changed = asyncio.Condition()
        self._consumed = False
        self._active: set[str] = set()

    # --- VoiceBackend -----------------------------------------------------------------
    async def start(self) -> None:
        if self.fail_start:
            raise BackendError(self.fail_start)
        self.started = True
        self.emit(Ready(provider_session_id="sess_fake", model="fake"))

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """Nothing in the background: everything is scripted by the test."""

    async def events(self) -> AsyncIterator[BackendEvent]:
        if self._consumed:
            raise RuntimeError("FakeBackend.events() has exactly one consumer")
        self._consumed = True
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, Closed):
                return

    async def push_audio(self, audio: bytes) -> None:
        self.pushed.append(audio)
        await self._notify()

    async def push_audio_b64(self, audio_b64: str) -> None:
        self.pushed_b64.append(audio_b64)
        await self._notify()

    async def report_heard(self, segment: str | None, heard_ms: int | None) -> None:
        self.heard.append(Heard(segment, heard_ms))
        await self._notify()

    async def submit_tool_result(
        self, call_id: str, output: str, *, continue_conversation: bool = True
    ) -> None:
        self.tool_results.append((call_id, output, continue_conversation))
        await self._notify()

    async def add_note(self, kind: NoteKind, text: str) -> None:
        self.notes.append((kind, text))
        await self._notify()

    async def send_user_text(self, text: str) -> None:
        self.user_texts.append(text)
        await self._notify()

    async def end_user_turn(self) -> bool:
        self.turn_ends += 1
        await self._notify()
        return True

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(Closed())
        await self._notify()

    def status(self) -> BackendStatus:
        return BackendStatus(
            backend="fake",
            model="fake",
            provider_session_id="sess_fake",
            counters={"pushed": len(self.pushed) + len(self.pushed_b64)},
        )

    # --- what the test sees -----------------------------------------------------------
    @property
    def audio_in(self) -> bytes:
        """Every byte of user audio the session pushed, in order."""
        if self.pushed_b64:
            return b"".join(base64.b64decode(p) for p in self.pushed_b64)
        return b"".join(self.pushed)

    async def wait_until(self, pred: Callable[[], Any], timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
        """Wait until `pred()` is true (re-checked whenever the session calls the backend)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(pred)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- scripting the model ----------------------------------------------------------
    def emit(self, event: BackendEvent) -> None:
        self._queue.put_nowait(event)

    def reply(self, reply: str = "r1") -> None:
        self._active.add(reply)
        self.emit(ReplyStarted(reply))

    def audio(self, segment: str, audio: bytes, *, reply: str = "r1") -> None:
        self.emit(AssistantAudio(audio, segment, reply))

    def segment_done(self, segment: str) -> None:
        self.emit(SegmentEnded(segment))

    def reply_done(self, reply: str = "r1", status: str = "completed") -> None:
        """The reply ends; the backend goes idle once no scripted reply runs."""
        self._active.discard(reply)
        self.emit(ReplyEnded(reply, status))
        if not self._active:
            self.emit(AssistantIdle())

    def speech_started(self, at_ms: int = 0) -> None:
        self.emit(UserSpeechStarted(at_ms))

    def speech_stopped(self, at_ms: int = 0) -> None:
        self.emit(UserSpeechStopped(at_ms))

    def transcript(
        self, role: str, text: str, *, final: bool = True, reply: str | None = None
    ) -> None:
        self.emit(TranscriptSegment(role, text, final, reply=reply))  # type: ignore[arg-type]

    def tool_call(self, name: str, arguments: str = "{}", *, call_id: str = "call_1") -> None:
        self.emit(ToolRequest(call_id, name, arguments))

    def drop(self, error: str = "connection lost") -> None:
        """The service went away."""
        self.emit(Closed(error))


class ContinuousFakeBackend(FakeBackend):
    """GPT-Live-like: a continuous output track with silence between replies.

    `say(audio, text)` queues a reply; the output task (started by `run`) plays it in
    `frame_ms` chunks paced in real time, emitting the transcript as pieces with offsets
    (never final), then silence, and `AssistantIdle` when the reply's audio is over. A
    `FlushPlayback` is never needed (the model yields by itself); `yield_now()` stops the
    current reply as the model does when the user talks over it.
    """

    def __init__(self, *, frame_ms: int = 20, **kwargs: Any) -> None:
        kwargs.setdefault(
            "capabilities",
            Capabilities(
                server_barge_in=True,
                turn_based=False,
                needs_continuous_input=True,
                b64_passthrough=True,
                final_transcripts=False,
            ),
        )
        super().__init__(**kwargs)
        self.frame_ms = frame_ms
        self._replies: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
        self._yield = asyncio.Event()
        self._ids = itertools.count(1)
        self.timeline_ms = 0  # output played so far (the continuous track's clock)
        self.input_ms = 0  # input received so far (the model's input clock)

    def say(self, audio: bytes, text: str = "") -> None:
        self._replies.put_nowait((audio, text))

    def yield_now(self) -> None:
        self._yield.set()

    def user_says(self, *pieces: str) -> None:
        """User transcript pieces, with offsets and never final, as GPT-Live sends them."""
        for text in pieces:
            self.emit(
                TranscriptSegment(
                    "user", text, False, start_ms=self.input_ms, end_ms=self.input_ms + 200
                )
            )

    async def push_audio(self, audio: bytes) -> None:
        self.input_ms += int(self.input_format.ms_for_bytes(len(audio)))
        await super().push_audio(audio)

    async def push_audio_b64(self, audio_b64: str) -> None:
        nbytes = len(audio_b64) * 3 // 4 - audio_b64.count("=")
        self.input_ms += int(self.input_format.ms_for_bytes(nbytes))
        await super().push_audio_b64(audio_b64)

    async def run(self, tg: asyncio.TaskGroup) -> None:
        tg.create_task(self._output_track(), name="fake-live-output")

    async def _output_track(self) -> None:
        frame_bytes = self.output_format.bytes_for_ms(self.frame_ms)
        silence = bytes([silence_byte(self.output_format)]) * frame_bytes
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        current: tuple[str, bytes, str] | None = None  # reply, audio left, transcript
        while not self.closed:
            next_at += self.frame_ms / 1000
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if current is None and not self._replies.empty():
                audio, text = self._replies.get_nowait()
                reply = f"live_{next(self._ids)}"
                current = (reply, audio, text)
                self._yield.clear()
                self.reply(reply)
                if text:
                    self.emit(
                        TranscriptSegment("assistant", text, False, self.timeline_ms, reply=reply)
                    )
            if current is not None and (not current[1] or self._yield.is_set()):
                reply = current[0]
                status = "cancelled" if self._yield.is_set() and current[1] else "completed"
                current = None
                self.emit(SegmentEnded(reply))
                self.reply_done(reply, status)
            if current is None:
                self.emit(AssistantAudio(silence, "", ""))  # filler: no reply, no segment
            else:
                reply, audio, text = current
                chunk, rest = audio[:frame_bytes], audio[frame_bytes:]
                current = (reply, rest, text)
                self.emit(AssistantAudio(chunk, reply, reply))
            self.timeline_ms += self.frame_ms


class FakeBackendFactory:
    """A `BackendFactory` that builds fake backends and keeps them for the test to script."""

    def __init__(self, cls: type[FakeBackend] = FakeBackend, **kwargs: Any) -> None:
        self.cls = cls
        self.kwargs = kwargs
        self.created: list[FakeBackend] = []
        self._new = asyncio.Event()

    def __call__(self, options: BackendOptions) -> FakeBackend:
        backend = self.cls(
            input_format=options.input_format,
            output_format=options.output_format,
            options=options,
            **self.kwargs,
        )
        self.created.append(backend)
        self._new.set()
        return backend

    async def wait_created(self, count: int = 1, timeout: float = 5.0) -> FakeBackend:  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
        async with asyncio.timeout(timeout):
            while len(self.created) < count:
                self._new.clear()
                await self._new.wait()
        return self.created[count - 1]
