"""Server frames in, client frames out: JSON text <-> typed events (no I/O).

`parse_server_event` raises `RemoteProtocolError` only when the frame is not a JSON object
with a string `type`, or when a known event lacks a field a client needs. Unknown types become
`UnknownEvent` (reference §11.9: new types keep appearing). The caller logs a
`RemoteProtocolError` and keeps reading: one bad frame does not end the session.
"""

from __future__ import annotations

import json
from typing import Any

from foreman.exceptions import RemoteProtocolError
from foreman.protocols.realtime._wire import extract
from foreman.protocols.realtime.client_events import ClientEvent, InputAudioBufferAppend
from foreman.protocols.realtime.server_events import SERVER_EVENT_TYPES, ServerEvent, UnknownEvent

__all__ = ["encode_audio_append", "encode_client_event", "parse_server_event"]

_APPEND_PREFIX = '{"type":"' + InputAudioBufferAppend.type + '","audio":"'
_APPEND_SUFFIX = '"}'


def parse_server_event(data: str | bytes | bytearray | dict[str, Any]) -> ServerEvent:
    """Parse one server frame (text, UTF-8 bytes, or an already-decoded dict)."""
    if isinstance(data, dict):
        obj: Any = data
    else:
        try:
            obj = json.loads(data)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError
            raise RemoteProtocolError(f"server frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"server frame is a JSON {type(obj).__name__}, not an object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise RemoteProtocolError("server frame has no string 'type'")
    cls = SERVER_EVENT_TYPES.get(kind)
    if cls is None:
        return UnknownEvent(type=kind, raw=obj)
    kwargs = extract(kind, obj, cls.spec)
    event_id = obj.get("event_id")
    return cls(event_id=event_id if isinstance(event_id, str) else "", raw=obj, **kwargs)


def encode_client_event(event: ClientEvent) -> str:
    """Compact JSON text for one client event."""
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False)


def encode_audio_append(b64_audio: str) -> str:
    """`input_audio_buffer.append` text for one audio chunk, without json.dumps (hot path).

    Base64 needs no JSON escaping; anything that would (quotes, backslashes, control or
    non-ASCII characters) is refused with ValueError rather than sent as broken JSON.
    """
    if (
        not (b64_audio.isascii() and b64_audio.isprintable())
        or '"' in b64_audio
        or "\\" in b64_audio
    ):
        raise ValueError("audio must be base64 text")
    return _APPEND_PREFIX + b64_audio + _APPEND_SUFFIX
