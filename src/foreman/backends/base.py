"""The `VoiceBackend` interface that sessions talk to, above the wire events.

A session never sees Realtime event names. It pushes audio in the backend's
`input_format`, iterates `events()` for what comes back, and calls the methods below.
The OpenAI Realtime GA backend is the first implementation; GPT-Live (model-driven turns,
delegated tools) and a local offline engine fit the same shape: a backend that has no
notion of truncation implements `interrupt` as "stop output", one without server VAD emits
`SpeechStarted` from its own detector.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from foreman.audio.formats import AudioFormat


# --- events a backend emits (small frozen records; no wire names) --------------------
@dataclass(frozen=True, slots=True)
class Ready:
    """The backend is configured (for Realtime: `session.updated` arrived)."""

    session_id: str
    model: str


@dataclass(frozen=True, slots=True)
class AudioOut:
    """Assistant audio in the backend's `output_format`."""

    audio: bytes
    item_id: str
    content_index: int
    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDone:
    item_id: str
    content_index: int
    response_id: str


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The user started talking: the barge-in signal."""

    audio_start_ms: int
    item_id: str


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int
    item_id: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """A piece of transcript. `final` texts are whole; others are deltas."""

    role: Literal["user", "assistant"]
    item_id: str
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """The model wants a tool run. Answer with `send_tool_result(call_id, ...)`."""

    call_id: str
    name: str
    arguments: str  # raw JSON text from the model; may be invalid
    item_id: str = ""
    response_id: str = ""


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    response_id: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str  # completed | cancelled | failed | incomplete
    reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackendWarning:
    """A non-fatal error from the service (logged, counted, the session carries on)."""

    message: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Closed:
    """The backend is gone. `error` is a one-line reason when it ended badly."""

    error: str | None = None


BackendEvent = (
    Ready
    | AudioOut
    | AudioDone
    | SpeechStarted
    | SpeechStopped
    | Transcript
    | ToolRequest
    | ResponseStarted
    | ResponseDone
    | BackendWarning
    | Closed
)


@dataclass(frozen=True)
class BackendOptions:
    """Per-session settings on top of config (start overrides, phone formats, tools)."""

    model: str
    endpoint: str
    voice: str
    instructions: str
    input_format: AudioFormat
    output_format: AudioFormat
    tools: list[dict[str, Any]] = field(default_factory=list)
    context: list[tuple[str, str]] = field(default_factory=list)  # (role, text) seeded first
    greeting: str | None = None  # when set, the assistant speaks first


@runtime_checkable
class VoiceBackend(Protocol):
    input_format: AudioFormat
    output_format: AudioFormat

    async def start(self) -> None:
        """Connect and configure. Raises BackendError with a one-line message on failure."""
        ...

    def events(self) -> AsyncIterator[BackendEvent]:
        """Iterate events until `Closed`. Exactly one consumer."""
        ...

    async def push_audio(self, audio: bytes) -> None:
        """Send caller audio in `input_format`. Never blocks on the model."""
        ...

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """Return a tool's output to the model; `respond` asks for the follow-up turn."""
        ...

    async def add_context(self, role: Literal["user", "assistant", "system"], text: str) -> None:
        """Insert a text item into the conversation (DTMF, chat history, notes)."""
        ...

    async def request_response(self, instructions: str | None = None) -> None:
        """Ask the model to speak now (greeting, after context)."""
        ...

    async def interrupt(self, item_id: str | None, heard_ms: int | None, *, cancel: bool) -> None:
        """Barge-in: cut the item to what was heard and, if `cancel`, stop generation."""
        ...

    async def close(self) -> None:
        """Close cleanly; idempotent."""
        ...

    def status(self) -> dict[str, Any]:
        """Debug counters and identifiers, safe to show (no secrets)."""
        ...
