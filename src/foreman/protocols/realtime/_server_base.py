"""Base of the typed server events: the wire-name table and the registration decorator.

Event classes live in `server_events.py` (session, conversation, input audio, transcription)
and `response_events.py` (responses, output audio buffer, MCP); each wire name appears once,
in the `@_event("...")` line above its class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from foreman.protocols.realtime._wire import FieldSpec, compile_spec

SERVER_EVENT_TYPES: dict[str, type[KnownServerEvent]] = {}

_E = TypeVar("_E", bound="KnownServerEvent")


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownServerEvent:
    """Base of every typed server event. `type` is the wire name (a class constant)."""

    type: ClassVar[str] = ""
    spec: ClassVar[tuple[FieldSpec, ...]] = ()
    event_id: str = ""  # absent on input_audio_buffer.dtmf_event_received
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A server event whose `type` Foreman does not know. Log it and carry on."""

    type: str
    raw: dict[str, Any] = dataclasses.field(repr=False, compare=False)


ServerEvent = KnownServerEvent | UnknownEvent


def event_type(name: str) -> Callable[[type[_E]], type[_E]]:
    """Class decorator: `name` is the wire type of the class; register it in the table."""

    def register(cls: type[_E]) -> type[_E]:
        if name in SERVER_EVENT_TYPES:  # pragma: no cover - a programming error
            raise RuntimeError(f"duplicate server event {name}")
        cls.type = name
        cls.spec = compile_spec(cls, frozenset({"event_id", "raw"}))
        SERVER_EVENT_TYPES[name] = cls
        return cls

    return register
