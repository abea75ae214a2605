"""Typed GA server events (reference openai-realtime.md §3). Wire names appear once, here.

Each class keeps the fields a client acts on, typed, plus `raw` (the whole wire object) for
everything else. Nested objects (session, item, response, part) stay dicts. An unknown `type`
becomes `UnknownEvent`, never an exception: new event types keep appearing (reference §11.9).

`SERVER_EVENT_TYPES` maps each wire `type` to its class; `parser.parse_server_event` uses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from foreman.protocols.realtime._wire import FieldSpec, compile_spec, path

__all__ = [
    "SERVER_EVENT_TYPES",
    "ConversationCreated",
    "ConversationItemAdded",
    "ConversationItemCreated",
    "ConversationItemDeleted",
    "ConversationItemDone",
    "ConversationItemRetrieved",
    "ConversationItemTruncated",
    "ErrorEvent",
    "InputAudioBufferCleared",
    "InputAudioBufferCommitted",
    "InputAudioBufferDtmfEventReceived",
    "InputAudioBufferSpeechStarted",
    "InputAudioBufferSpeechStopped",
    "InputAudioBufferTimeoutTriggered",
    "InputAudioTranscriptionCompleted",
    "InputAudioTranscriptionDelta",
    "InputAudioTranscriptionFailed",
    "InputAudioTranscriptionSegment",
    "KnownServerEvent",
    "McpListToolsCompleted",
    "McpListToolsFailed",
    "McpListToolsInProgress",
    "OutputAudioBufferCleared",
    "OutputAudioBufferStarted",
    "OutputAudioBufferStopped",
    "RateLimitsUpdated",
    "ResponseContentPartAdded",
    "ResponseContentPartDone",
    "ResponseCreated",
    "ResponseDone",
    "ResponseFunctionCallArgumentsDelta",
    "ResponseFunctionCallArgumentsDone",
    "ResponseMcpCallArgumentsDelta",
    "ResponseMcpCallArgumentsDone",
    "ResponseMcpCallCompleted",
    "ResponseMcpCallFailed",
    "ResponseMcpCallInProgress",
    "ResponseOutputAudioDelta",
    "ResponseOutputAudioDone",
    "ResponseOutputAudioTranscriptDelta",
    "ResponseOutputAudioTranscriptDone",
    "ResponseOutputItemAdded",
    "ResponseOutputItemDone",
    "ResponseOutputTextDelta",
    "ResponseOutputTextDone",
    "ServerEvent",
    "SessionCreated",
    "SessionUpdated",
    "UnknownEvent",
    "is_audio_part",
    "item_id_of",
]

SERVER_EVENT_TYPES: dict[str, type[KnownServerEvent]] = {}

_E = TypeVar("_E", bound="KnownServerEvent")


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownServerEvent:
    """Base of every typed server event. `type` is the wire name (a class constant)."""

    type: ClassVar[str] = ""
    spec: ClassVar[tuple[FieldSpec, ...]] = ()
    event_id: str = ""  # absent on input_audio_buffer.dtmf_event_received (reference §3)
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A server event whose `type` Foreman does not know. Log it and carry on."""

    type: str
    raw: dict[str, Any] = dataclasses.field(repr=False, compare=False)


ServerEvent = KnownServerEvent | UnknownEvent


def _event(name: str) -> Callable[[type[_E]], type[_E]]:
    def register(cls: type[_E]) -> type[_E]:
        if name in SERVER_EVENT_TYPES:  # pragma: no cover - a programming error
            raise RuntimeError(f"duplicate server event {name}")
        cls.type = name
        cls.spec = compile_spec(cls, frozenset({"event_id", "raw"}))
        SERVER_EVENT_TYPES[name] = cls
        return cls

    return register


# --- §3.1 session and conversation ------------------------------------------------------
@_event("error")
@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(KnownServerEvent):
    """An `error` (reference §7.1). `error_event_id` echoes the client event that failed."""

    error: dict[str, Any]
    error_type: str = path("error", "type", default="")
    code: str | None = path("error", "code")
    message: str = path("error", "message", default="")
    param: str | None = path("error", "param")
    error_event_id: str | None = path("error", "event_id")


@_event("session.created")
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCreated(KnownServerEvent):
    session: dict[str, Any]


@_event("session.updated")
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdated(KnownServerEvent):
    session: dict[str, Any]


@_event("conversation.created")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationCreated(KnownServerEvent):
    conversation: dict[str, Any] = dataclasses.field(default_factory=dict)


@_event("conversation.item.added")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemAdded(KnownServerEvent):
    """An item entered the conversation (model output arrives empty and in_progress)."""

    item: dict[str, Any]
    previous_item_id: str | None = None


@_event("conversation.item.created")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemCreated(KnownServerEvent):
    """Beta-era name, still in the GA SDK union; treat like `conversation.item.added`."""

    item: dict[str, Any]
    previous_item_id: str | None = None


@_event("conversation.item.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemDone(KnownServerEvent):
    item: dict[str, Any]
    previous_item_id: str | None = None


@_event("conversation.item.retrieved")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemRetrieved(KnownServerEvent):
    item: dict[str, Any]


@_event("conversation.item.truncated")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemTruncated(KnownServerEvent):
    item_id: str
    content_index: int = 0
    audio_end_ms: int


@_event("conversation.item.deleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItemDeleted(KnownServerEvent):
    item_id: str


# --- §3.2 input audio buffer --------------------------------------------------------------
@_event("input_audio_buffer.speech_started")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferSpeechStarted(KnownServerEvent):
    """The barge-in signal (reference §5.2)."""

    item_id: str
    audio_start_ms: int


@_event("input_audio_buffer.speech_stopped")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferSpeechStopped(KnownServerEvent):
    item_id: str
    audio_end_ms: int


@_event("input_audio_buffer.committed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferCommitted(KnownServerEvent):
    item_id: str
    previous_item_id: str | None = None


@_event("input_audio_buffer.cleared")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferCleared(KnownServerEvent):
    pass


@_event("input_audio_buffer.timeout_triggered")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferTimeoutTriggered(KnownServerEvent):
    item_id: str
    audio_start_ms: int = 0
    audio_end_ms: int = 0


@_event("input_audio_buffer.dtmf_event_received")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferDtmfEventReceived(KnownServerEvent):
    """SIP only: a keypad press (`event` is "0"-"9", "*", "#", "A"-"D")."""

    event: str
    received_at: int = 0


# --- §3.3 input transcription -------------------------------------------------------------
@_event("conversation.item.input_audio_transcription.delta")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioTranscriptionDelta(KnownServerEvent):
    item_id: str
    content_index: int = 0
    delta: str = ""


@_event("conversation.item.input_audio_transcription.completed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioTranscriptionCompleted(KnownServerEvent):
    item_id: str
    content_index: int = 0
    transcript: str
    usage: dict[str, Any] | None = None


@_event("conversation.item.input_audio_transcription.segment")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioTranscriptionSegment(KnownServerEvent):
    segment_id: str = path("id", default="")
    item_id: str
    content_index: int = 0
    text: str = ""
    speaker: str = ""
    start: float = 0.0
    end: float = 0.0


@_event("conversation.item.input_audio_transcription.failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioTranscriptionFailed(KnownServerEvent):
    item_id: str
    content_index: int = 0
    error: dict[str, Any] = dataclasses.field(default_factory=dict)


# --- §3.4 responses -----------------------------------------------------------------------
@_event("response.created")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCreated(KnownServerEvent):
    response: dict[str, Any]
    response_id: str = path("response", "id", default="")
    status: str = path("response", "status", default="")


@_event("response.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseDone(KnownServerEvent):
    """Always sent, whatever the outcome; `status` is completed/cancelled/failed/incomplete."""

    response: dict[str, Any]
    response_id: str = path("response", "id", default="")
    status: str = path("response", "status", default="")


@_event("response.output_item.added")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutputItemAdded(KnownServerEvent):
    response_id: str
    output_index: int = 0
    item: dict[str, Any]


@_event("response.output_item.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutputItemDone(KnownServerEvent):
    response_id: str
    output_index: int = 0
    item: dict[str, Any]


@_event("response.content_part.added")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseContentPartAdded(KnownServerEvent):
    """`part.type` is `audio`/`text` here in GA, `output_audio`/`output_text` elsewhere."""

    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    part: dict[str, Any] = dataclasses.field(default_factory=dict)


@_event("response.content_part.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseContentPartDone(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    part: dict[str, Any] = dataclasses.field(default_factory=dict)


@_event("response.output_audio.delta")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutputAudioDelta(KnownServerEvent):
    """Base64 audio in the session's output format (WebSocket only)."""

    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    delta: str = dataclasses.field(repr=False)


@_event("response.output_audio.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutputAudioDone(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


@_event("response.output_audio_transcript.delta")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutputAudioTranscriptDelta(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    delta: str


@_event("response.output_audio_transcript.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutputAudioTranscriptDone(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    transcript: str


@_event("response.output_text.delta")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutputTextDelta(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    delta: str


@_event("response.output_text.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseOutputTextDone(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    text: str


@_event("response.function_call_arguments.delta")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFunctionCallArgumentsDelta(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    call_id: str
    delta: str


@_event("response.function_call_arguments.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFunctionCallArgumentsDone(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    call_id: str
    name: str = ""
    arguments: str


@_event("rate_limits.updated")
@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitsUpdated(KnownServerEvent):
    rate_limits: list[Any]


# --- §3.5 WebRTC/SIP output buffer ----------------------------------------------------------
@_event("output_audio_buffer.started")
@dataclass(frozen=True, slots=True, kw_only=True)
class OutputAudioBufferStarted(KnownServerEvent):
    response_id: str = ""


@_event("output_audio_buffer.stopped")
@dataclass(frozen=True, slots=True, kw_only=True)
class OutputAudioBufferStopped(KnownServerEvent):
    response_id: str = ""


@_event("output_audio_buffer.cleared")
@dataclass(frozen=True, slots=True, kw_only=True)
class OutputAudioBufferCleared(KnownServerEvent):
    response_id: str = ""


# --- §3.6 MCP -------------------------------------------------------------------------------
@_event("mcp_list_tools.in_progress")
@dataclass(frozen=True, slots=True, kw_only=True)
class McpListToolsInProgress(KnownServerEvent):
    item_id: str


@_event("mcp_list_tools.completed")
@dataclass(frozen=True, slots=True, kw_only=True)
class McpListToolsCompleted(KnownServerEvent):
    item_id: str


@_event("mcp_list_tools.failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class McpListToolsFailed(KnownServerEvent):
    item_id: str


@_event("response.mcp_call_arguments.delta")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseMcpCallArgumentsDelta(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    delta: str


@_event("response.mcp_call_arguments.done")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseMcpCallArgumentsDone(KnownServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    arguments: str


@_event("response.mcp_call.in_progress")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseMcpCallInProgress(KnownServerEvent):
    item_id: str
    output_index: int = 0


@_event("response.mcp_call.completed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseMcpCallCompleted(KnownServerEvent):
    item_id: str
    output_index: int = 0


@_event("response.mcp_call.failed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseMcpCallFailed(KnownServerEvent):
    item_id: str
    output_index: int = 0


def item_id_of(item: dict[str, Any]) -> str | None:
    """The `id` of an item dict, or None."""
    value = item.get("id")
    return value if isinstance(value, str) else None


def is_audio_part(part_type: object) -> bool:
    """True for `audio` (content_part events) and `output_audio` (items): both spellings."""
    return part_type in ("audio", "output_audio")
