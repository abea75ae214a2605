"""The Media Streams wire shape on Twilio's side, in one place: the text frames Twilio sends
and the shape check of what it accepts back.

https://www.twilio.com/docs/voice/media-streams/websocket-messages

`TwilioCallerStream` builds its frames here after checking the phase table; test doubles that
play Twilio without phases (`foreman.testing.memory_twilio`, which also sends frames out of
turn on purpose) build theirs here too, so both speak the same wire. Numbers go out as
strings, the way Twilio sends them; `seq` is the frame's `sequenceNumber` (`start` is 1).
`parse_server_frame` judges one frame from the server by its shape alone (the phase is the
caller's business).
"""

from __future__ import annotations

import binascii
import json
from json.encoder import encode_basestring_ascii
from typing import Any

from foreman.protocols.twilio.messages import (
    MULAW_CHANNELS,
    MULAW_ENCODING,
    MULAW_SAMPLE_RATE,
    Rejected,
    ServerClear,
    ServerMark,
    ServerMedia,
)

__all__ = [
    "BINARY_FRAME",
    "INVALID_MESSAGE",
    "SERVER_EVENTS",
    "connected_frame",
    "dtmf_frame",
    "json_string",
    "mark_frame",
    "media_frame",
    "parse_server_frame",
    "start_frame",
    "stop_frame",
]

BINARY_FRAME = 31950
INVALID_MESSAGE = 31951

# What the server may send: top-level keys, the nested object's key, its keys. Exactly these.
_SHAPES: dict[str, tuple[frozenset[str], str | None, frozenset[str]]] = {
    "media": (frozenset({"event", "streamSid", "media"}), "media", frozenset({"payload"})),
    "mark": (frozenset({"event", "streamSid", "mark"}), "mark", frozenset({"name"})),
    "clear": (frozenset({"event", "streamSid"}), None, frozenset()),
}
SERVER_EVENTS = frozenset(_SHAPES)

json_string = encode_basestring_ascii  # a str as a JSON string literal, quotes included


def _compact(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


# --- what Twilio sends --------------------------------------------------------------------------
def connected_frame() -> str:
    """The first frame after the upgrade."""
    return '{"event":"connected","protocol":"Call","version":"1.0.0"}'


def start_frame(
    seq: int,
    *,
    stream_sid: str,
    call_sid: str,
    account_sid: str,
    custom_parameters: dict[str, str] | None = None,
    tracks: tuple[str, ...] = ("inbound",),
    encoding: str = MULAW_ENCODING,
    sample_rate: int = MULAW_SAMPLE_RATE,
    channels: int = MULAW_CHANNELS,
) -> str:
    """The stream's metadata; `custom_parameters` are the TwiML `<Parameter>`s."""
    return _compact(
        {
            "event": "start",
            "sequenceNumber": str(seq),
            "start": {
                "accountSid": account_sid,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": list(tracks),
                "customParameters": dict(custom_parameters or {}),
                "mediaFormat": {
                    "encoding": encoding,
                    "sampleRate": sample_rate,
                    "channels": channels,
                },
            },
            "streamSid": stream_sid,
        }
    )


def media_frame(seq: int, chunk: int, timestamp_ms: int, ulaw: bytes, *, sid_json: str) -> str:
    """One frame of caller audio. `sid_json` is the streamSid as a JSON string
    (`json_string(stream_sid)`, escaped once per stream).

    Built without json.dumps (a load test sends thousands a second): every other value is a
    digit string or base64."""
    b64 = binascii.b2a_base64(ulaw, newline=False).decode("ascii")
    return (
        f'{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound",'
        f'"chunk":"{chunk}","timestamp":"{timestamp_ms}","payload":"{b64}"}},'
        f'"streamSid":{sid_json}}}'
    )


def mark_frame(seq: int, stream_sid: str | None, name: str) -> str:
    """The echo of a mark the server sent, once the audio before it has played."""
    return _compact(
        {
            "event": "mark",
            "sequenceNumber": str(seq),
            "streamSid": stream_sid,
            "mark": {"name": name},
        }
    )


def dtmf_frame(seq: int, stream_sid: str | None, digit: str) -> str:
    """The caller pressed a key."""
    return _compact(
        {
            "event": "dtmf",
            "streamSid": stream_sid,
            "sequenceNumber": str(seq),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
    )


def stop_frame(
    seq: int, stream_sid: str | None, account_sid: str | None, call_sid: str | None
) -> str:
    """The stream is over."""
    return _compact(
        {
            "event": "stop",
            "sequenceNumber": str(seq),
            "stop": {"accountSid": account_sid, "callSid": call_sid},
            "streamSid": stream_sid,
        }
    )


# --- what Twilio accepts back -------------------------------------------------------------------
def parse_server_frame(
    frame: str | bytes, stream_sid: str | None
) -> ServerMedia | ServerMark | ServerClear | Rejected:
    """One frame from the server, judged by its shape the way Twilio does, strictly: only
    `media {event, streamSid, media: {payload}}`, `mark {event, streamSid, mark: {name}}` and
    `clear {event, streamSid}` in JSON text frames, with `stream_sid` (when known). Anything
    else is `Rejected` with every rule it breaks (31950 for a binary frame, 31951 otherwise).
    Never raises."""
    if not isinstance(frame, str):
        size = len(frame) if isinstance(frame, bytes | bytearray | memoryview) else 0
        return Rejected(BINARY_FRAME, (f"binary frame of {size} bytes ({BINARY_FRAME})",))
    try:
        msg = json.loads(frame)
    except (ValueError, RecursionError):
        return Rejected(INVALID_MESSAGE, (f"not JSON: {frame[:60]!r} ({INVALID_MESSAGE})",))
    if not isinstance(msg, dict):
        problem = f"not a JSON object: {frame[:60]!r} ({INVALID_MESSAGE})"
        return Rejected(INVALID_MESSAGE, (problem,))
    event = msg.get("event")
    if not isinstance(event, str) or (shape := _SHAPES.get(event)) is None:
        problem = f"unknown event {repr(event)[:40]} ({INVALID_MESSAGE})"
        return Rejected(INVALID_MESSAGE, (problem,), msg)
    problems: list[str] = []
    keys, nested, nested_keys = shape
    if msg.keys() != keys:
        problems.append(f"{event}: fields {sorted(msg)} != {sorted(keys)} ({INVALID_MESSAGE})")
    if stream_sid is not None and msg.get("streamSid") != stream_sid:
        sid = repr(msg.get("streamSid"))[:40]
        problems.append(f"{event}: wrong streamSid {sid} ({INVALID_MESSAGE})")
    body: dict[str, Any] = {}
    if nested is not None:
        value = msg.get(nested)
        if isinstance(value, dict) and value.keys() == nested_keys:
            body = value
        else:
            problems.append(
                f"{event}.{nested} must be exactly {sorted(nested_keys)} ({INVALID_MESSAGE})"
            )
    audio = b""
    if event == "media" and body:
        payload = body["payload"]
        try:
            if not isinstance(payload, str):
                raise ValueError
            audio = binascii.a2b_base64(payload, strict_mode=True)
        except ValueError:  # binascii.Error included
            problems.append(f"media.payload is not base64 text ({INVALID_MESSAGE})")
    elif event == "mark" and body and (not isinstance(body["name"], str) or not body["name"]):
        problems.append(f"mark.name must be a non-empty string ({INVALID_MESSAGE})")
    if problems:
        return Rejected(INVALID_MESSAGE, tuple(problems), msg)
    if event == "media":
        return ServerMedia(body["payload"], audio, msg)
    if event == "mark":
        return ServerMark(body["name"], msg)
    return ServerClear(msg)
