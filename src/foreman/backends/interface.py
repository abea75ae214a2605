"""The `VoiceBackend` interface: what a conversation session needs from any speech model.

A session never sees a provider's event names or ids. It pushes the user's audio, iterates
`events()`, and calls the commands below; the backend decides how its API expresses them.
The interface sits above any one API on purpose: OpenAI Realtime is turn-based (responses,
items, truncation, server VAD), GPT-Live is one continuous full-duplex timeline that handles
barge-in itself and delegates tools, and the local engine is a pipeline of its own. Each
declares what it does in `Capabilities`, and the session adapts to those flags, never to a
backend's type.

Events carry opaque strings instead of provider ids: a `reply` (one stretch of the assistant
talking, e.g. a Realtime response) and a `segment` (one stretch of audio the session plays
and can report a position in, e.g. a Realtime output item). The backend keeps the mapping
back to its own ids for `report_heard`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from foreman.audio.formats import AudioFormat
from foreman.tools.request import ToolRequest

__all__ = [
    "AssistantAudio",
    "AssistantIdle",
    "BackendEvent",
    "BackendOptions",
    "BackendStatus",
    "BackendWarning",
    "Capabilities",
    "Closed",
    "FlushPlayback",
    "NoteKind",
    "Ready",
    "ReplyEnded",
    "ReplyStarted",
    "SegmentEnded",
    "ToolRequest",
    "TranscriptSegment",
    "UserSpeechStarted",
    "UserSpeechStopped",
    "VoiceBackend",
]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend does by itself; the session fills in the rest.

    * `server_barge_in`: the model notices the user talking over it and yields on its own
      (GPT-Live). The backend then never emits `UserSpeechStarted`; the session never flushes
      playback on its own account.
    * `turn_based`: the assistant speaks in discrete replies that end (`ReplyEnded`) and
      only after the user's turn (Realtime, local engine); False for a continuous output
      track that carries silence between replies.
    * `needs_continuous_input`: a gap in input audio stalls the model (GPT-Live's timeline
      only advances with audio): the session must keep audio flowing, silence included.
    * `b64_passthrough`: `push_audio_b64` sends base64 text on without decoding it, so an
      endpoint that receives base64 (Twilio) should use it when formats match.
    * `final_transcripts`: every utterance ends with a final `TranscriptSegment` that holds
      its whole text (Realtime); without them the session groups pieces itself (GPT-Live).
    """

    server_barge_in: bool = False
    turn_based: bool = True
    needs_continuous_input: bool = False
    b64_passthrough: bool = False
    final_transcripts: bool = True


# --- events (small frozen records; no provider names or ids) ---------------------------------
@dataclass(frozen=True, slots=True)
class Ready:
    """Connected and configured. `provider_session_id` is the provider's own id, shown as
    such (the session's id is Foreman's)."""

    provider_session_id: str
    model: str


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    """The assistant started a reply (the session is busy until `AssistantIdle`)."""

    reply: str


@dataclass(frozen=True, slots=True)
class AssistantAudio:
    """Assistant audio in the backend's `output_format`, for `segment` of `reply`. A
    continuous track's filler between replies has `reply` and `segment` empty: it is
    played, but nobody is talking."""

    audio: bytes
    segment: str
    reply: str


@dataclass(frozen=True, slots=True)
class SegmentEnded:
    """No more audio will come for `segment` (the player may pad and flush it)."""

    segment: str


@dataclass(frozen=True, slots=True)
class ReplyEnded:
    """A reply finished. `status`: completed | cancelled | failed | incomplete."""

    reply: str
    status: str = "completed"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AssistantIdle:
    """Nothing more to say now: no reply runs and none is about to start. What `end_call`
    and a text turn wait for. Emitted when the backend goes from busy to idle."""


@dataclass(frozen=True, slots=True)
class UserSpeechStarted:
    """The user started talking (only from backends without `server_barge_in`): the
    session stops playback at once and reports what was heard."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class UserSpeechStopped:
    at_ms: int


@dataclass(frozen=True, slots=True)
class FlushPlayback:
    """The backend wants queued playback dropped now (its model yielded, or it restarted)."""


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """A piece of what was said. `final` pieces close an utterance; backends that never
    send finals (continuous transcripts) leave grouping to the session. Offsets are ms on
    the backend's timeline when it knows them. `reply` links assistant text to its reply."""

    role: Literal["user", "assistant"]
    text: str
    final: bool
    start_ms: int | None = None
    end_ms: int | None = None
    reply: str | None = None


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
    | ReplyStarted
    | AssistantAudio
    | SegmentEnded
    | ReplyEnded
    | AssistantIdle
    | UserSpeechStarted
    | UserSpeechStopped
    | FlushPlayback
    | TranscriptSegment
    | ToolRequest
    | BackendWarning
    | Closed
)

NoteKind = Literal["status", "instruction", "context"]


# --- options and status ---------------------------------------------------------------------
@dataclass(frozen=True)
class BackendOptions:
    """Per-session settings every backend understands. Settings of one backend only (turn
    detection, transcription, delegation) come from its own config section, which its
    factory binds."""

    model: str
    endpoint: str
    voice: str
    instructions: str
    input_format: AudioFormat
    output_format: AudioFormat
    tools: tuple[Mapping[str, Any], ...] = ()
    # Seeded before the first response, oldest first: what was said, and notes (summaries
    # of earlier sessions, tool outcomes) as "system".
    history: tuple[tuple[Literal["user", "assistant", "system"], str], ...] = ()
    greeting: str | None = None  # set: the assistant speaks first, following this
    # The greeting's exact words, for a backend that speaks a fixed greeting rather than
    # waiting for its model to write one (the local engine); None: its own short default.
    greeting_text: str | None = None


@dataclass(frozen=True)
class BackendStatus:
    """What status shows of a backend (never secrets)."""

    backend: str  # e.g. "openai-realtime"
    model: str
    endpoint_host: str = ""
    provider_session_id: str | None = None
    phase: str = ""
    counters: Mapping[str, int | float] = field(default_factory=dict)
    usage: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "endpoint_host": self.endpoint_host,
            "provider_session_id": self.provider_session_id,
            "phase": self.phase,
            "counters": dict(self.counters),
            "usage": dict(self.usage),
        }


@runtime_checkable
class VoiceBackend(Protocol):
    """One conversation with one model. Call `start()`, then `run(tg)`, then iterate
    `events()` in one task until `Closed`; call commands from any task of the session."""

    capabilities: Capabilities
    input_format: AudioFormat
    output_format: AudioFormat

    async def start(self) -> None:
        """Connect and configure. Raises BackendError with a one-line message on failure."""
        ...

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """Start any background work in the session's task group, then return. A failure
        there ends the session with its reason, like any other task of the session."""
        ...

    def events(self) -> AsyncIterator[BackendEvent]:
        """Events until `Closed`. Exactly one consumer."""
        ...

    async def push_audio(self, audio: bytes) -> None:
        """The user's audio in `input_format`. Never blocks on the model."""
        ...

    async def push_audio_b64(self, audio_b64: str) -> None:
        """The same as base64 text (cheapest when `capabilities.b64_passthrough`)."""
        ...

    async def report_heard(self, segment: str | None, heard_ms: int | None) -> None:
        """The user interrupted: playback stopped after `heard_ms` of `segment` (None when
        nothing was playing). The backend stops its reply if one still runs and cuts its
        record of what was said to what was heard, as far as its API allows."""
        ...

    async def submit_tool_result(
        self, call_id: str, output: str, *, continue_conversation: bool = True
    ) -> None:
        """The tool call's one output. With `continue_conversation`, the backend has the
        model answer from it when it sees fit (after the current reply, after every pending
        call of a batch has its output, ...)."""
        ...

    async def add_note(self, kind: NoteKind, text: str) -> None:
        """Tell the model something. `status`: the user should hear about it (the backend
        makes the model speak when it is idle, else the note is read with what comes next);
        `instruction`: do this now (a greeting, an announcement); `context`: a silent fact."""
        ...

    async def send_user_text(self, text: str) -> None:
        """A typed user turn the assistant must answer."""
        ...

    async def end_user_turn(self) -> bool:
        """Push-to-talk release: the user's spoken turn is over, answer it. False when the
        backend detects turns itself (nothing to do)."""
        ...

    async def close(self) -> None:
        """Close cleanly; idempotent."""
        ...

    def status(self) -> BackendStatus:
        """Identifiers and counters, safe to show."""
        ...
