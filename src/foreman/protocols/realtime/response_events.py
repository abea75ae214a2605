"""Typed GA server events for responses, the WebRTC/SIP output buffer and MCP
(https://platform.openai.com/docs/api-reference/realtime-server-events). Import them from
`server_events`.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from typing import Any

from foreman.protocols.realtime._server_base import KnownServerEvent
from foreman.protocols.realtime._server_base import event_type as _event
from foreman.protocols.realtime._wire import path

__all__ = [
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
]


# --- responses ----------------------------------------------------------------------------
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

    @property
    def audio(self) -> bytes:
        """The decoded audio bytes (decodes on every access)."""
        return base64.b64decode(self.delta)


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


# --- WebRTC/SIP output buffer ---------------------------------------------------------------
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


# --- MCP ------------------------------------------------------------------------------------
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
