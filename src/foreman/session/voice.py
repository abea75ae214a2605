"""A voice session started from the control API (the desk assistant's V2V mode).

It owns one backend and a reader task. Audio from the model goes to an `AudioSink`
(nothing yet: the local speaker arrives with the local-voice issue), transcripts and
session events go to the bus, tool requests go to the tool dispatcher, and `say()` lets a
caller inject a user text turn and stream the assistant's reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from foreman.backends.base import (
    AudioOut,
    BackendEvent,
    BackendWarning,
    Closed,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    ToolRequest,
    Transcript,
    VoiceBackend,
)
from foreman.exceptions import SessionClosed
from foreman.policy.context import CallContext
from foreman.session.bus import EventBus

log = logging.getLogger(__name__)

END_CALL_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class _ToolResultSent:
    """Told to `say()` listeners: a tool call of the turn has its result."""

    call_id: str
    respond: bool


class ToolHandler(Protocol):
    async def handle(self, request: ToolRequest, session: Any) -> None: ...
    def on_user_transcript(self, session: Any, text: str) -> None: ...
    def cancel_session(self, session_id: str) -> None: ...


class VoiceSession:
    """One backend session plus the bookkeeping the API and the TUI need."""

    def __init__(
        self,
        backend: VoiceBackend,
        ctx: CallContext,
        bus: EventBus,
        *,
        tools: ToolHandler | None = None,
        on_end: Any = None,
    ) -> None:
        self.backend = backend
        self.ctx = ctx
        self.bus = bus
        self.tools = tools
        self.since = time.time()
        self.error: str | None = None
        self.audio_out_bytes = 0
        self.responses = 0
        self._speaking: set[str] = set()  # responses in progress
        self._quiet = asyncio.Event()  # set while no response is in progress
        self._quiet.set()
        self._listeners: set[asyncio.Queue[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._on_end = on_end
        self._closed = asyncio.Event()
        self.end_reason: str | None = None

    async def start(self) -> None:
        await self.backend.start()
        self._reader = asyncio.create_task(self._read(), name=f"voice-reader-{self.ctx.session_id}")

    @property
    def active(self) -> bool:
        return not self._closed.is_set()

    async def _read(self) -> None:
        try:
            async for event in self.backend.events():
                self._dispatch(event)
                if isinstance(event, Closed):
                    if event.error:
                        self.error = event.error
                    break
        except Exception as exc:  # the reader must end the session with a reason, not vanish
            log.exception("= session %s reader failed", self.ctx.session_id)
            self.error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._finish()

    def _dispatch(self, event: BackendEvent) -> None:
        for queue in list(self._listeners):
            queue.put_nowait(event)
        if isinstance(event, AudioOut):
            self.audio_out_bytes += len(event.audio)
        elif isinstance(event, Transcript):
            if event.final:
                self.bus.publish(
                    "transcript",
                    session_id=self.ctx.session_id,
                    role=event.role,
                    text=event.text,
                    item_id=event.item_id,
                )
                if event.role == "user" and self.tools is not None:
                    self.tools.on_user_transcript(self, event.text)
        elif isinstance(event, ToolRequest):
            if self.tools is None:
                task = asyncio.create_task(
                    self.backend.send_tool_result(
                        event.call_id, '{"error":"no tools are available in this session"}'
                    )
                )
            else:
                task = asyncio.create_task(self.tools.handle(event, self))
            self._tool_tasks.add(task)
            task.add_done_callback(self._tool_tasks.discard)
        elif isinstance(event, ResponseStarted):
            self._speaking.add(event.response_id)
            self._quiet.clear()
        elif isinstance(event, ResponseDone):
            self._speaking.discard(event.response_id)
            if not self._speaking:
                self._quiet.set()
            self.responses += 1
        elif isinstance(event, SpeechStarted):
            self.bus.publish("speech.started", session_id=self.ctx.session_id)
        elif isinstance(event, BackendWarning):
            self.bus.publish(
                "session.warning",
                session_id=self.ctx.session_id,
                code=event.code,
                message=event.message,
            )

    def _finish(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self.tools is not None:
            self.tools.cancel_session(self.ctx.session_id)
        for task in self._tool_tasks:
            task.cancel()
        for queue in list(self._listeners):
            queue.put_nowait(Closed(self.error))
        self.bus.publish(
            "session.ended",
            session_id=self.ctx.session_id,
            error=self.error,
            reason=self.end_reason,
        )
        if self._on_end is not None:
            self._on_end(self)

    async def close(self, reason: str = "stopped") -> None:
        self.end_reason = self.end_reason or reason
        await self.backend.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._finish()

    # --- ToolSession (what the tool dispatcher may do) -------------------------------
    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        await self.backend.send_tool_result(call_id, output, respond=respond)
        for queue in list(self._listeners):
            queue.put_nowait(_ToolResultSent(call_id, respond))

    async def notify_model(self, text: str) -> None:
        """A system note the model must know ("waiting for approval", "still running"); when
        the model is silent it is asked to speak, so the user never gets dead air."""
        await self.backend.add_context("system", text)
        if not self._speaking:  # while it speaks, the note is read with what comes next
            await self.backend.request_response()

    def request_end(self, reason: str) -> None:
        """end_call: the model said goodbye; close once the current response is done."""
        self.end_reason = reason
        task = asyncio.create_task(self._end_after_response())
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    async def _end_after_response(self) -> None:
        # The goodbye is the response that called end_call: let it finish (bounded, so a
        # stuck response cannot keep the session open).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), END_CALL_GRACE_S)
        await self.close(self.end_reason or "end_call")

    # --- text turns --------------------------------------------------------------------
    async def say(self, text: str) -> AsyncIterator[dict[str, Any]]:
        """Send a user text turn; yield {"delta"} pieces, {"tool"} notices, then
        {"done", "transcript", "status"}.

        The turn lasts until the model has answered with every tool result it asked for: a
        tool call ends one response, a note (e.g. "waiting for approval") may start another,
        and the answer comes in the response after the last tool result."""
        if not self.active:
            raise SessionClosed("the session has ended")
        queue: asyncio.Queue[BackendEvent | _ToolResultSent] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            await self.backend.add_context("user", text)
            await self.backend.request_response()
            response_id: str | None = None
            pending: set[str] = set()  # tool calls of this turn without a result yet
            follow_up = False  # a result was sent with respond=True: one more response comes
            finished: str | None = None  # status of the last response of this turn to end
            parts: list[str] = []
            while True:
                event = await queue.get()
                if isinstance(event, ResponseStarted) and response_id is None:
                    response_id, follow_up = event.response_id, False
                elif isinstance(event, Transcript) and event.role == "assistant":
                    if not event.final:
                        parts.append(event.text)
                        yield {"delta": event.text}
                elif isinstance(event, ToolRequest):
                    pending.add(event.call_id)
                    yield {"tool": event.name, "call_id": event.call_id}
                elif isinstance(event, _ToolResultSent):
                    if event.call_id in pending:
                        pending.discard(event.call_id)
                        follow_up = follow_up or event.respond
                elif isinstance(event, ResponseDone) and event.response_id == response_id:
                    response_id, finished = None, event.status
                    if event.status != "completed":
                        pending.clear()  # a cancelled or failed turn is over
                        follow_up = False
                elif isinstance(event, Closed):
                    yield {
                        "done": True,
                        "transcript": "".join(parts),
                        "status": "closed",
                        "error": event.error,
                    }
                    return
                # Over when a response has ended, none runs, and no tool result or
                # follow-up answer is still owed (a tool result may come after response.done).
                if finished and response_id is None and not pending and not follow_up:
                    yield {"done": True, "transcript": "".join(parts), "status": finished}
                    return
        finally:
            self._listeners.discard(queue)
