"""GPT-Live server events, parsed into small frozen records.

Only the fields Foreman uses are typed; a known event with a required field missing or of
the wrong type is a `RemoteProtocolError` (one line), and a type Foreman does not know yet
(the API is young and moving) is an `UnknownEvent`, never an error. Field names follow the
`openai.types.live` server event union of the official Python SDK.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from foreman.exceptions import RemoteProtocolError

__all__ = [
    "Appended",
    "DelegationCreated",
    "ErrorEvent",
    "InfoEvent",
    "InputTranscriptDelta",
    "OutputAudioDelta",
    "OutputTranscriptDelta",
    "ResponseEnvelope",
    "ServerEvent",
    "SessionClosed",
    "SessionStarted",
    "SessionUpdated",
    "UnknownEvent",
    "UsageUpdated",
    "parse_server_event",
]


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session_id: str
    model: str
    expires_at: int
    session: Mapping[str, Any]
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    session: Mapping[str, Any]
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutputAudioDelta:
    """Base64 audio in the session format; no item, no response, no done event."""

    delta: str


@dataclass(frozen=True, slots=True)
class InputTranscriptDelta:
    delta: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class OutputTranscriptDelta:
    delta: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class DelegationCreated:
    """Metadata only: no task text, no arguments."""

    delegation_id: str
    target: str  # client | responses | decisions
    response_id: str | None
    offset_ms: int


@dataclass(frozen=True, slots=True)
class ResponseEnvelope:
    """A nested Responses streaming event (`event`, a plain object) of a delegation."""

    delegation_id: str | None
    event: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Appended:
    """`session.{instructions,thinking,commentary}.appended`: placed on the timeline (not
    proof that anything was said or heard)."""

    kind: str  # instructions | thinking | commentary
    start_ms: int | None
    end_ms: int | None
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class UsageUpdated:
    seconds: float  # cumulative: never summed
    context_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """Terminal: the only proof that the session was finalised."""

    reason: str
    seconds: float | None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    code: str | None
    message: str
    type: str | None = None
    param: str | None = None
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class InfoEvent:
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A server event type Foreman does not handle (yet): logged, never fatal."""

    type: str
    raw: Mapping[str, Any] = field(repr=False)


ServerEvent = (
    SessionStarted
    | SessionUpdated
    | OutputAudioDelta
    | InputTranscriptDelta
    | OutputTranscriptDelta
    | DelegationCreated
    | ResponseEnvelope
    | Appended
    | UsageUpdated
    | SessionClosed
    | ErrorEvent
    | InfoEvent
    | UnknownEvent
)


# --- field readers: one line naming the event and the field ---------------------------------
def _str(ev: Mapping[str, Any], key: str) -> str:
    value = ev.get(key)
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{ev.get('type')}: {key!r} must be a string")
    return value


def _opt_str(ev: Mapping[str, Any], key: str) -> str | None:
    value = ev.get(key)
    if value is not None and not isinstance(value, str):
        raise RemoteProtocolError(f"{ev.get('type')}: {key!r} must be a string or null")
    return value


def _int(ev: Mapping[str, Any], key: str) -> int:
    value = ev.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RemoteProtocolError(f"{ev.get('type')}: {key!r} must be a number")
    if isinstance(value, float) and not math.isfinite(value):  # JSON's Infinity and NaN
        raise RemoteProtocolError(f"{ev.get('type')}: {key!r} must be a finite number")
    return int(value)


def _opt_int(ev: Mapping[str, Any], key: str) -> int | None:
    return None if ev.get(key) is None else _int(ev, key)


def _obj(ev: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = ev.get(key)
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"{ev.get('type')}: {key!r} must be an object")
    return value


def _seconds(ev: Mapping[str, Any], key: str = "usage") -> float | None:
    usage = ev.get(key)
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise RemoteProtocolError(f"{ev.get('type')}: {key!r} must be an object")
    seconds = usage.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise RemoteProtocolError(f"{ev.get('type')}: '{key}.seconds' must be a number")
    return float(seconds)


def _started(ev: Mapping[str, Any]) -> SessionStarted:
    session = _obj(ev, "session")
    return SessionStarted(
        _str(session, "id"),
        str(session.get("model") or ""),
        _int(session, "expires_at"),
        session,
        _opt_str(ev, "client_event_id"),
    )


def _delegation(ev: Mapping[str, Any]) -> DelegationCreated:
    d = _obj(ev, "delegation")
    return DelegationCreated(
        _str(d, "id"), _str(d, "target"), _opt_str(d, "response_id"), _int(ev, "offset_ms")
    )


def _usage(ev: Mapping[str, Any]) -> UsageUpdated:
    seconds = _seconds(ev)
    if seconds is None:
        raise RemoteProtocolError("session.usage.updated: 'usage' is missing")
    window = ev.get("context_window")
    ratio = window.get("usage_ratio") if isinstance(window, dict) else None
    return UsageUpdated(seconds, float(ratio) if isinstance(ratio, int | float) else None)


def _error(ev: Mapping[str, Any]) -> ErrorEvent:
    err = _obj(ev, "error")
    return ErrorEvent(
        _opt_str(err, "code"),
        str(err.get("message") or "unknown error"),
        _opt_str(err, "type"),
        _opt_str(err, "param"),
        _opt_str(err, "client_event_id") or _opt_str(ev, "client_event_id"),
    )


def _appended(kind: str) -> Callable[[Mapping[str, Any]], Appended]:
    def parse(ev: Mapping[str, Any]) -> Appended:
        return Appended(
            kind, _opt_int(ev, "start_ms"), _opt_int(ev, "end_ms"), _opt_str(ev, "client_event_id")
        )

    return parse


_PARSERS: dict[str, Callable[[Mapping[str, Any]], ServerEvent]] = {
    "session.started": _started,
    "session.updated": lambda ev: SessionUpdated(
        _obj(ev, "session"), _opt_str(ev, "client_event_id")
    ),
    "session.output_audio.delta": lambda ev: OutputAudioDelta(_str(ev, "delta")),
    "session.input_transcript.delta": lambda ev: InputTranscriptDelta(
        _str(ev, "delta"), _int(ev, "start_ms"), _int(ev, "end_ms")
    ),
    "session.output_transcript.delta": lambda ev: OutputTranscriptDelta(
        _str(ev, "delta"), _int(ev, "start_ms"), _int(ev, "end_ms")
    ),
    "session.delegation.created": _delegation,
    "response.event": lambda ev: ResponseEnvelope(_opt_str(ev, "delegation_id"), _obj(ev, "event")),
    "session.instructions.appended": _appended("instructions"),
    "session.thinking.appended": _appended("thinking"),
    "session.commentary.appended": _appended("commentary"),
    "session.usage.updated": _usage,
    "session.closed": lambda ev: SessionClosed(_str(ev, "reason"), _seconds(ev)),
    "error": _error,
    "info": lambda ev: InfoEvent(_opt_str(ev, "code"), str(ev.get("message") or "")),
}

KNOWN_TYPES = frozenset(_PARSERS)


def parse_server_event(frame: str | bytes | Mapping[str, Any]) -> ServerEvent:
    """One server frame (JSON text, or an already decoded object) as a record. Raises
    `RemoteProtocolError` for a frame that is not a JSON object with a string `type`, or a
    known event whose fields are wrong."""
    if isinstance(frame, Mapping):
        ev: Any = frame
    else:
        try:
            ev = json.loads(frame)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RemoteProtocolError(f"not JSON: {exc}") from None
    if not isinstance(ev, dict):
        raise RemoteProtocolError("a server event must be a JSON object")
    kind = ev.get("type")
    if not isinstance(kind, str):
        raise RemoteProtocolError("a server event needs a string 'type'")
    parser = _PARSERS.get(kind)
    if parser is None:
        return UnknownEvent(kind, ev)
    return parser(ev)
