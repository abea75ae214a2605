"""Typed GA server events. Import every server event here. Reference:
https://platform.openai.com/docs/api-reference/realtime-server-events.

Session, conversation, input audio and transcription events are defined in this
module; responses, the output audio buffer and MCP in `response_events.py`, which
this module re-exports. Each wire name appears once, in the `@_event("...")` line of its class.

Each class keeps the fields a client acts on, typed, plus `raw` (the whole wire object) for
everything else. Nested objects (session, item, response, part) stay dicts. An unknown `type`
becomes `UnknownEvent`, never an exception: new event types keep appearing.

`SERVER_EVENT_TYPES` maps each wire `type` to its class; `parser.parse_server_event` uses it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from foreman.protocols.realtime._server_base import (
    SERVER_EVENT_TYPES,
    KnownServerEvent,
    ServerEvent,
    UnknownEvent,
)
from foreman.protocols.realtime._server_base import event_type as _event
from foreman.protocols.realtime._wire import path
from foreman.protocols.realtime.response_events import *  # noqa: F403
from foreman.protocols.realtime.response_events import __all__ as _response_all

__all__ = [  # noqa: PLE0604
    "SERVER_EVENT_TYPES",
    "KnownServerEvent",
    "ServerEvent",
    "UnknownEvent",
    "is_audio_part",
    "item_id_of",
    "ErrorEvent",
    "SessionCreated",
    "SessionUpdated",
    "ConversationCreated",
    "ConversationItemAdded",
    "ConversationItemCreated",
    "ConversationItemDone",
    "ConversationItemRetrieved",
    "ConversationItemTruncated",
    "ConversationItemDeleted",
    "InputAudioBufferSpeechStarted",
    "InputAudioBufferSpeechStopped",
    "InputAudioBufferCommitted",
    "InputAudioBufferCleared",
    "InputAudioBufferTimeoutTriggered",
    "InputAudioBufferDtmfEventReceived",
    "InputAudioTranscriptionDelta",
    "InputAudioTranscriptionCompleted",
    "InputAudioTranscriptionSegment",
    "InputAudioTranscriptionFailed",
    *_response_all,
]


# --- session and conversation -----------------------------------------------------------
@_event("error")
@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(KnownServerEvent):
    """An `error`. `error_event_id` echoes the client event that failed."""

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


# --- input audio buffer -------------------------------------------------------------------
@_event("input_audio_buffer.speech_started")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioBufferSpeechStarted(KnownServerEvent):
    """The barge-in signal: the caller started talking."""

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


# --- input transcription ------------------------------------------------------------------
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


def item_id_of(item: dict[str, Any]) -> str | None:
    """The `id` of an item dict, or None."""
    value = item.get("id")
    return value if isinstance(value, str) else None


def is_audio_part(part_type: object) -> bool:
    """True for `audio` (content_part events) and `output_audio` (items): both spellings."""
    return part_type in ("audio", "output_audio")
