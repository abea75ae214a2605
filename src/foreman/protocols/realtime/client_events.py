"""The eleven GA client events. Wire names appear once, here. Reference:
https://platform.openai.com/docs/api-reference/realtime-client-events.

Each event is a frozen dataclass with an optional `event_id` (echoed by the server in an
`error` if this event fails) and `to_dict()`, which returns exactly the wire shape:
`type` plus the fields that are set; `None` fields are left out. Nested dicts are passed
through by reference (not copied), so do not mutate them after sending.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

__all__ = [
    "CLIENT_EVENT_TYPES",
    "ClientEvent",
    "ConversationItemCreate",
    "ConversationItemDelete",
    "ConversationItemRetrieve",
    "ConversationItemTruncate",
    "InputAudioBufferAppend",
    "InputAudioBufferClear",
    "InputAudioBufferCommit",
    "OutputAudioBufferClear",
    "ResponseCancel",
    "ResponseCreate",
    "SessionUpdate",
]

CLIENT_EVENT_TYPES: dict[str, type[ClientEvent]] = {}

_C = TypeVar("_C", bound="ClientEvent")


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """Base of every client event. `type` is the wire name (a class constant)."""

    type: ClassVar[str] = ""
    wire_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """The wire object: `{"type": ..., **fields that are not None}`."""
        out: dict[str, Any] = {"type": self.type}
        for name in self.wire_fields:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def _client(name: str) -> Callable[[type[_C]], type[_C]]:
    def register(cls: type[_C]) -> type[_C]:
        if name in CLIENT_EVENT_TYPES:  # pragma: no cover - a programming error
            raise RuntimeError(f"duplicate client event {name}")
        cls.type = name
        # event_id first, like the SDK's serialisation; order does not matter on the wire.
        names = [f.name for f in dataclasses.fields(cls)]
        cls.wire_fields = ("event_id", *(n for n in names if n != "event_id"))
        CLIENT_EVENT_TYPES[name] = cls
        return cls

    return register


@_client("session.update")
@dataclass(frozen=True, slots=True)
class SessionUpdate(ClientEvent):
    """A (partial) session update; `session["type"]` is required by the service."""

    session: dict[str, Any]
    event_id: str | None = None


@_client("input_audio_buffer.append")
@dataclass(frozen=True, slots=True)
class InputAudioBufferAppend(ClientEvent):
    """Base64 audio in the session's input format. The service does not reply."""

    audio: str = dataclasses.field(repr=False)
    event_id: str | None = None


@_client("input_audio_buffer.commit")
@dataclass(frozen=True, slots=True)
class InputAudioBufferCommit(ClientEvent):
    event_id: str | None = None


@_client("input_audio_buffer.clear")
@dataclass(frozen=True, slots=True)
class InputAudioBufferClear(ClientEvent):
    event_id: str | None = None


@_client("conversation.item.create")
@dataclass(frozen=True, slots=True)
class ConversationItemCreate(ClientEvent):
    """Insert an item (see `items.py`); `previous_item_id="root"` inserts at the start."""

    item: dict[str, Any]
    previous_item_id: str | None = None
    event_id: str | None = None


@_client("conversation.item.retrieve")
@dataclass(frozen=True, slots=True)
class ConversationItemRetrieve(ClientEvent):
    item_id: str
    event_id: str | None = None


@_client("conversation.item.truncate")
@dataclass(frozen=True, slots=True)
class ConversationItemTruncate(ClientEvent):
    """Cut assistant audio to what was heard. Build it with `RealtimeSession.clamp_truncate`."""

    item_id: str
    content_index: int
    audio_end_ms: int
    event_id: str | None = None


@_client("conversation.item.delete")
@dataclass(frozen=True, slots=True)
class ConversationItemDelete(ClientEvent):
    item_id: str
    event_id: str | None = None


@_client("response.create")
@dataclass(frozen=True, slots=True)
class ResponseCreate(ClientEvent):
    """Run inference; `response` holds per-response overrides, None for defaults."""

    response: dict[str, Any] | None = None
    event_id: str | None = None


@_client("response.cancel")
@dataclass(frozen=True, slots=True)
class ResponseCancel(ClientEvent):
    """Cancel `response_id`, or the active response of the default conversation."""

    response_id: str | None = None
    event_id: str | None = None


@_client("output_audio_buffer.clear")
@dataclass(frozen=True, slots=True)
class OutputAudioBufferClear(ClientEvent):
    """WebRTC/SIP only: drop audio the service has queued. Send `response.cancel` first."""

    event_id: str | None = None
