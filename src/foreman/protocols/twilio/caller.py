"""`TwilioCallerStream`: the sans-I/O Media Streams protocol, Twilio's end (caller role).

https://www.twilio.com/docs/voice/media-streams/websocket-messages

What a test double needs to play Twilio towards a server: `connected()`, `start(...)`,
`media(ulaw, timestamp_ms)`, `dtmf(digit)`, `mark(name)` (the echo of a mark the server
sent) and `stop()` return the text frames to send, numbered the way Twilio numbers them
(`sequenceNumber` from "1" on `start`, `chunk` from "1", all numbers as strings).
`receive(frame)` judges what the server sent the way Twilio does, strictly: only
`media {event, streamSid, media: {payload}}`, `mark {event, streamSid, mark: {name}}` and
`clear {event, streamSid}` in JSON text frames, with the start's `streamSid`, between `start`
and `stop`. Anything else comes back as `Rejected` (error 31950 for a binary frame, 31951
otherwise) and is counted; Twilio logs those and carries on, and so does this class. Audio that
is not whole 160-byte frames is accepted with a `Tolerated` note (Twilio's playback jitters).

Phases follow the caller rows of the table in `states.py`. Sending out of turn raises
`InvalidState`; sending after `stop` or `connection_lost()` raises `SessionClosed`.
"""

from __future__ import annotations

import binascii
import json
import secrets
from collections import Counter
from json.encoder import encode_basestring_ascii
from typing import Any

from foreman.protocols.twilio.messages import (
    DTMF_DIGITS,
    FRAME_BYTES,
    MULAW_CHANNELS,
    MULAW_ENCODING,
    MULAW_SAMPLE_RATE,
    CallerEvent,
    Rejected,
    ServerClear,
    ServerMark,
    ServerMedia,
    Tolerated,
)
from foreman.protocols.twilio.states import Endpoint

BINARY_FRAME = 31950
INVALID_MESSAGE = 31951

CALLER_COUNTER_NAMES = (
    "frames_in",
    "media_in",
    "marks_in",
    "clears_in",
    "rejected",
    "tolerated",
    "media_out",
    "marks_out",
    "dtmf_out",
)

# What the server may send: top-level keys, the nested object's key, its keys. Exactly these.
_SHAPES: dict[str, tuple[frozenset[str], str | None, frozenset[str]]] = {
    "media": (frozenset({"event", "streamSid", "media"}), "media", frozenset({"payload"})),
    "mark": (frozenset({"event", "streamSid", "mark"}), "mark", frozenset({"name"})),
    "clear": (frozenset({"event", "streamSid"}), None, frozenset()),
}


def _compact(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


class TwilioCallerStream(Endpoint):
    """One Media Stream as Twilio plays it. Not thread-safe; one per fake call."""

    role = "caller"
    label = "TwilioCallerStream(caller)"

    def __init__(self) -> None:
        super().__init__()
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.account_sid: str | None = None
        self.custom_parameters: dict[str, str] = {}
        self.counters: dict[str, int] = dict.fromkeys(CALLER_COUNTER_NAMES, 0)
        self._seq = 0
        self._chunk = 0
        self._last_ts = 0
        self._sid_json = ""  # the streamSid as a JSON string, escaped once
        self._pending_marks: Counter[str] = Counter()  # received, not yet echoed

    # --------------------------------------------------------------- outbound
    def connected(self) -> str:
        """The first frame after the upgrade."""
        self._send("connected")
        return '{"event":"connected","protocol":"Call","version":"1.0.0"}'

    def start(
        self,
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
        """The stream's metadata, once, after `connected()`. `custom_parameters` are the
        TwiML `<Parameter>`s; the media format is always µ-law/8000/1 on real Twilio."""
        if "start" in self._sendable:  # arguments are checked only when the table allows it
            for name, value in (
                ("stream_sid", stream_sid),
                ("call_sid", call_sid),
                ("account_sid", account_sid),
            ):
                if not isinstance(value, str) or not value:
                    raise ValueError(f"start needs a non-empty {name}")
        self._send("start")
        self.stream_sid, self.call_sid, self.account_sid = stream_sid, call_sid, account_sid
        self.custom_parameters = dict(custom_parameters or {})
        self._sid_json = encode_basestring_ascii(stream_sid)
        return _compact(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": account_sid,
                    "streamSid": stream_sid,
                    "callSid": call_sid,
                    "tracks": list(tracks),
                    "customParameters": self.custom_parameters,
                    "mediaFormat": {
                        "encoding": encoding,
                        "sampleRate": sample_rate,
                        "channels": channels,
                    },
                },
                "streamSid": stream_sid,
            }
        )

    def media(self, ulaw: bytes, timestamp_ms: int) -> str:
        """One frame of caller audio (Twilio sends 160 bytes every 20 ms). `timestamp_ms` is
        the audio's time since the stream started; it never goes backwards."""
        if "media" not in self._sendable:  # the table's check, inlined: media keeps the phase
            raise self.refusal("media")
        if not ulaw:
            raise ValueError("empty media payload")
        if timestamp_ms < self._last_ts:
            raise ValueError(f"media timestamp {timestamp_ms} is before {self._last_ts}")
        self._last_ts = timestamp_ms
        self._chunk += 1
        self._seq += 1
        self.counters["media_out"] += 1
        # Built without json.dumps (a load test sends thousands a second): every value is a
        # digit string or base64, and the sid was escaped at start.
        b64 = binascii.b2a_base64(ulaw, newline=False).decode("ascii")
        return (
            f'{{"event":"media","sequenceNumber":"{self._seq}","media":{{"track":"inbound",'
            f'"chunk":"{self._chunk}","timestamp":"{timestamp_ms}","payload":"{b64}"}},'
            f'"streamSid":{self._sid_json}}}'
        )

    def mark(self, name: str) -> str:
        """Echo a mark the server sent (`ServerMark`): once the audio queued before it has
        played, or at once after a `clear`. Echoing a name that is not pending raises
        `InvalidState`."""
        if "mark" in self._sendable and not self._pending_marks[name]:
            raise self.refusal("mark", f"no mark {name[:40]!r} is waiting for its echo")
        self._send("mark")
        self._pending_marks[name] -= 1
        if not self._pending_marks[name]:
            del self._pending_marks[name]
        self.counters["marks_out"] += 1
        return _compact(
            {
                "event": "mark",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    def dtmf(self, digit: str) -> str:
        """The caller pressed a key: `0`-`9`, `*`, `#` (`A`-`D` on some lines)."""
        if "dtmf" in self._sendable and digit not in DTMF_DIGITS:
            raise ValueError(f"{digit[:5]!r} is not a DTMF key")
        self._send("dtmf")
        self.counters["dtmf_out"] += 1
        return _compact(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def stop(self) -> str:
        """The stream is over (the caller hung up or the call was ended). Nothing may be
        sent after it, and the server's messages are no longer acted on."""
        self._send("stop")
        return _compact(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                "streamSid": self.stream_sid,
            }
        )

    @property
    def pending_marks(self) -> int:
        """Marks received and not yet echoed."""
        return self._pending_marks.total()

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    # ---------------------------------------------------------------- inbound
    def receive(self, frame: str | bytes) -> list[CallerEvent]:
        """Judge one frame from the server. Act on `ServerMedia` / `ServerMark` /
        `ServerClear`; count `Rejected` and `Tolerated`. Never raises."""
        self.counters["frames_in"] += 1
        if not isinstance(frame, str):
            size = len(frame) if isinstance(frame, bytes | bytearray | memoryview) else 0
            return self._reject(
                None, f"binary frame of {size} bytes ({BINARY_FRAME})", code=BINARY_FRAME
            )
        try:
            msg = json.loads(frame)
        except (ValueError, RecursionError):
            return self._reject(None, f"not JSON: {frame[:60]!r} ({INVALID_MESSAGE})")
        if not isinstance(msg, dict):
            return self._reject(None, f"not a JSON object: {frame[:60]!r} ({INVALID_MESSAGE})")
        event = msg.get("event")
        if not isinstance(event, str) or (shape := _SHAPES.get(event)) is None:
            return self._reject(msg, f"unknown event {repr(event)[:40]} ({INVALID_MESSAGE})")
        problems: list[str] = []
        next_phase = self._receivable.get(event)
        if next_phase is None:
            when = "after stop" if self.phase == "stopped" else "before start"
            problems.append(f"{event} sent {when}")
        keys, nested, nested_keys = shape
        if msg.keys() != keys:
            problems.append(f"{event}: fields {sorted(msg)} != {sorted(keys)} ({INVALID_MESSAGE})")
        if self.stream_sid is not None and msg.get("streamSid") != self.stream_sid:
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
        if problems or next_phase is None:
            return self._reject(msg, *problems)
        if next_phase != self.phase:
            self._enter(next_phase)
        if event == "media":
            self.counters["media_in"] += 1
            accepted: CallerEvent = ServerMedia(body["payload"], audio, msg)
            if not audio or len(audio) % FRAME_BYTES:
                self.counters["tolerated"] += 1
                note = f"media payload of {len(audio)} bytes is not whole 160-byte frames"
                return [Tolerated(note), accepted]
            return [accepted]
        if event == "mark":
            self.counters["marks_in"] += 1
            self._pending_marks[body["name"]] += 1
            return [ServerMark(body["name"], msg)]
        self.counters["clears_in"] += 1
        return [ServerClear(msg)]

    def _reject(
        self, msg: dict[str, Any] | None, *problems: str, code: int = INVALID_MESSAGE
    ) -> list[CallerEvent]:
        self.counters["rejected"] += 1
        return [Rejected(code, problems, msg)]


__all__ = ["BINARY_FRAME", "CALLER_COUNTER_NAMES", "INVALID_MESSAGE", "TwilioCallerStream"]


def new_sid(prefix: str) -> str:
    """A Twilio-shaped sid: `prefix` (`CA` a call, `MZ` a stream, `SM` a message) and 32
    hex digits (https://www.twilio.com/docs/glossary/what-is-a-sid)."""
    return prefix + secrets.token_hex(16)
