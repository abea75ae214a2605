"""What a `CallSession` is made of and talks to: call facts, counters, and the small
interfaces it needs from the media socket, the tool dispatcher and Twilio REST."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from foreman.backends.base import ToolRequest
from foreman.policy.context import CallContext


class CallEnded(Exception):
    """Raised inside the task group to end the call; `reason` is recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TwilioTransport(Protocol):
    """The media WebSocket as the session sees it (FastAPI adapter, in-memory in tests)."""

    async def receive(self) -> str | bytes | None:
        """The next frame; None once the socket is closed."""
        ...

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close; idempotent, never raises."""
        ...


class Dispatcher(Protocol):
    """The tool dispatcher (foreman.tools.dispatcher.ToolDispatcher) as the session uses it."""

    async def handle(self, request: ToolRequest, session: Any) -> None: ...

    def on_user_transcript(self, session: Any, text: str) -> Any: ...

    def cancel_session(self, session_id: str) -> Any: ...


class Hangup(Protocol):
    """Twilio REST as the session uses it (foreman.io.twilio_rest.TwilioRest)."""

    async def hangup(self, call_sid: str) -> bool: ...


@dataclass
class CallInfo:
    """What is known about a call when its stream starts."""

    call_sid: str
    stream_sid: str
    ctx: CallContext
    direction: str = "inbound"  # inbound | outbound
    from_: str = ""
    to: str = ""
    purpose: str = ""


@dataclass
class CallStats:
    media_in: int = 0
    media_before_start: int = 0
    frames_out: int = 0
    marks_sent: int = 0
    marks_played: int = 0
    marks_dropped: int = 0
    bad_messages: int = 0
    barge_ins: int = 0
    late_audio_dropped: int = 0
    dtmf: int = 0
    gap_filled_ms: int = 0
    tool_calls: int = 0
    warnings: int = 0
    last_warning: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
