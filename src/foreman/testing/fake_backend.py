"""An in-memory `VoiceBackend` for fast session tests (no sockets, no model).

Script what the "model" does with the emit helpers (`audio`, `speech_started`,
`tool_call`, ...) and assert on what the session did (`pushed`, `interrupts`,
`tool_results`, `context`). `wait_until(pred)` waits for the session to act, without sleeps.

    backend = FakeBackend()
    backend.response("resp_1")
    backend.audio("item_A", chunk, response_id="resp_1")
    await backend.wait_until(lambda: backend.interrupts)
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from foreman.audio.formats import PCMU_8K, AudioFormat
from foreman.backends.base import (
    AudioDone,
    AudioOut,
    BackendEvent,
    BackendOptions,
    Closed,
    Ready,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
    ToolRequest,
    Transcript,
)
from foreman.exceptions import BackendError


@dataclass(frozen=True, slots=True)
class Interrupt:
    item_id: str | None
    heard_ms: int | None
    cancel: bool


@dataclass
class FakeBackend:
    """Scriptable backend. `passthrough_b64` exposes the optional `push_audio_b64` fast path."""

    input_format: AudioFormat = PCMU_8K
    output_format: AudioFormat = PCMU_8K
    options: BackendOptions | None = None
    fail_start: str | None = None  # start() raises BackendError(fail_start)
    passthrough_b64: bool = True
    started: bool = False
    closed: bool = False
    pushed: list[bytes] = field(default_factory=list)
    pushed_b64: list[str] = field(default_factory=list)
    interrupts: list[Interrupt] = field(default_factory=list)
    tool_results: list[tuple[str, str, bool]] = field(default_factory=list)
    context: list[tuple[str, str]] = field(default_factory=list)
    responses_requested: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[BackendEvent] = asyncio.Queue()
        self._changed = asyncio.Condition()
        self._consumed = False
        if not self.passthrough_b64:
            self.push_audio_b64 = None  # type: ignore[assignment]

    # --- VoiceBackend -----------------------------------------------------------------
    async def start(self) -> None:
        if self.fail_start:
            raise BackendError(self.fail_start)
        self.started = True
        self.emit(Ready(session_id="sess_fake", model="fake"))

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

    async def push_audio_b64(self, payload: str) -> None:
        """Fast path: base64 audio in `input_format`, forwarded without decoding."""
        self.pushed_b64.append(payload)
        await self._notify()

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        self.tool_results.append((call_id, output, respond))
        await self._notify()

    async def add_context(self, role: Literal["user", "assistant", "system"], text: str) -> None:
        self.context.append((role, text))
        await self._notify()

    async def request_response(self, instructions: str | None = None) -> None:
        self.responses_requested.append(instructions)
        await self._notify()

    async def interrupt(self, item_id: str | None, heard_ms: int | None, *, cancel: bool) -> None:
        self.interrupts.append(Interrupt(item_id, heard_ms, cancel))
        await self._notify()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(Closed())
        await self._notify()

    def status(self) -> dict[str, Any]:
        return {"fake": True, "pushed": len(self.pushed) + len(self.pushed_b64)}

    # --- what the test sees -----------------------------------------------------------
    @property
    def audio_in(self) -> bytes:
        """Every byte of caller audio the session pushed, in order."""
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

    def response(self, response_id: str) -> None:
        self.emit(ResponseStarted(response_id))

    def audio(
        self, item_id: str, audio: bytes, *, response_id: str = "resp_1", content_index: int = 0
    ) -> None:
        self.emit(AudioOut(audio, item_id, content_index, response_id))

    def audio_done(self, item_id: str, *, response_id: str = "resp_1") -> None:
        self.emit(AudioDone(item_id, 0, response_id))

    def response_done(self, response_id: str = "resp_1", status: str = "completed") -> None:
        self.emit(ResponseDone(response_id, status))

    def speech_started(self, audio_start_ms: int = 0, item_id: str = "item_user") -> None:
        self.emit(SpeechStarted(audio_start_ms, item_id))

    def speech_stopped(self, audio_end_ms: int = 0, item_id: str = "item_user") -> None:
        self.emit(SpeechStopped(audio_end_ms, item_id))

    def transcript(self, role: Literal["user", "assistant"], text: str, item_id: str = "i") -> None:
        self.emit(Transcript(role, item_id, text, True))

    def tool_call(self, name: str, arguments: str = "{}", *, call_id: str = "call_1") -> None:
        self.emit(ToolRequest(call_id, name, arguments))

    def drop(self, error: str = "connection lost") -> None:
        """The service went away."""
        self.emit(Closed(error))


class FakeBackendFactory:
    """A `BackendFactory` that builds FakeBackends and keeps them for the test to script."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.created: list[FakeBackend] = []
        self._new = asyncio.Event()

    def __call__(self, options: BackendOptions) -> FakeBackend:
        backend = FakeBackend(
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
