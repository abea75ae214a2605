"""A phone-call ConversationSession: MemoryTwilio <-> TwilioEndpoint <-> FakeBackend."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from foreman.audio import g711
from foreman.audio.formats import AudioFormat
from foreman.backends.interface import Capabilities
from foreman.bus import EventBus
from foreman.clock import Clock
from foreman.config import IdentityConfig
from foreman.endpoints.twilio import TwilioEndpoint
from foreman.phone.identity import identify
from foreman.protocols.twilio.stream import TwilioStream
from foreman.session.conversation import ConversationSession
from foreman.testing.fake_backend import FakeBackend
from foreman.testing.memory_twilio import MemoryTwilio, twilio_start
from foreman.testing.speech import synthesize
from foreman.tools.request import ToolRequest

CALL_SID = "CA" + "1" * 32
STREAM_SID = "MZ" + "1" * 32


@functools.cache
def speech_ulaw(text: str = "Hello, this is Foreman. How can I help you today?") -> bytes:
    """Real speech as µ-law 8 kHz."""
    return g711.pcm16_to_ulaw(synthesize(text, 8000))


async def until(pred: Callable[[], Any], timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
    """Wait for a condition that no event announces (polls; never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.002)


class FakeRest:
    def __init__(self) -> None:
        self.hangups: list[str] = []
        self.closed = False

    async def hangup(self, call_sid: str) -> bool:
        self.hangups.append(call_sid)
        return True

    async def aclose(self) -> None:
        self.closed = True


class EndCallDispatcher:
    """The tool layer's shape: end_call ends the call; records everything."""

    def __init__(self) -> None:
        self.handled: list[ToolRequest] = []
        self.transcripts: list[str] = []
        self.cancelled: list[str] = []

    def tool_definitions(self, ctx: Any) -> list[dict[str, Any]]:
        return [{"type": "function", "name": "end_call", "parameters": {"type": "object"}}]

    def deadline_s(self, request: ToolRequest) -> float:
        return 5.0

    async def handle(self, request: ToolRequest, session: Any) -> None:
        self.handled.append(request)
        if request.name == "end_call":
            await session.send_tool_result(request.call_id, '{"ok": true}', respond=False)
            session.request_end("end_call")
        else:
            await session.send_tool_result(request.call_id, '{"error": "unknown tool"}')

    def on_user_utterance(self, session: Any, text: str) -> None:
        self.transcripts.append(text)

    def cancel_session(self, session_id: str) -> None:
        self.cancelled.append(session_id)


class Call:
    def __init__(
        self,
        *,
        model_audio: str = "g711_ulaw",
        max_lead_ms: int = 60_000,
        max_chunk_ms: int = 200,
        caller: str = "+15550000001",
        dispatcher: Any = None,
        rest: Any = None,
        clock: Clock | None = None,
        passthrough_b64: bool = True,
        identity: IdentityConfig | None = None,
        backend: FakeBackend | None = None,
        history: Any = None,
    ) -> None:
        fmt = AudioFormat.from_name(model_audio)
        self.tw = MemoryTwilio(STREAM_SID)
        self.backend = backend or FakeBackend(
            input_format=fmt,
            output_format=fmt,
            capabilities=Capabilities(b64_passthrough=passthrough_b64),
        )
        self.stream = TwilioStream()
        self.stream.receive(twilio_start(STREAM_SID, CALL_SID, {"caller": caller}))
        ctx = identify(
            caller, identity or IdentityConfig(), session_id=f"call-{CALL_SID}", verified=True
        )
        self.bus = EventBus()
        self.sub = self.bus.subscribe(maxsize=10_000)
        self.dispatcher = dispatcher
        self.rest = rest
        self.ended: list[str] = []
        self.endpoint = TwilioEndpoint(
            self.stream,
            self.tw,
            call_sid=CALL_SID,
            rest=rest,
            max_lead_ms=max_lead_ms,
            max_chunk_ms=max_chunk_ms,
            clock=clock,
        )
        self.session = ConversationSession(
            ctx,
            self.backend,
            self.endpoint,
            bus=self.bus,
            tools=dispatcher,
            clock=clock,
            on_end=lambda s: self.ended.append(s.reason),
            labels={"call_sid": CALL_SID},
            history=history,
        )
        self.task: asyncio.Task[str] | None = None

    async def __aenter__(self) -> Call:
        self.task = asyncio.create_task(self.session.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if not self.task.done():
            self.tw.feed_stop()
        await asyncio.wait_for(self.task, 5)
        if exc[0] is None:  # every frame the session sent is one Twilio accepts
            assert self.tw.rejected == [], self.tw.rejected

    async def result(self) -> str:
        assert self.task is not None
        return await asyncio.wait_for(self.task, 5)

    async def bus_event(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
        async with asyncio.timeout(timeout):
            while True:
                ev = await self.sub.get()
                if ev.kind == kind:
                    return ev.data

    async def sync(self) -> None:
        """Wait until the session has handled every backend event emitted so far."""
        self.backend.speech_stopped(at_ms=-1)
        while True:
            data = await self.bus_event("session.speech_stopped")
            if data["at_ms"] == -1:
                return
