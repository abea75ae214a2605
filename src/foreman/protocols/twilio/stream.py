"""`TwilioStream`: the sans-I/O Media Streams protocol for one call (reference §2).

Feed every WebSocket frame to `receive()` and act on the events it returns; ask `media()`,
`mark()` and `clear()` for the text frames to send. It never touches a socket or a clock.

Phases (a table, not scattered ifs):

    waiting ──start──> streaming ──stop / connection_lost()──> stopped
       └────────────── stop / connection_lost() ──────────────────┘

* A bad frame never raises out of `receive()`: binary, non-JSON, malformed or unknown frames
  come back as `BadMessage` / `Unknown` and are counted (§6.4 scenario 10). A `start` that is
  malformed or announces another format than µ-law/8000/1 is a `BadMessage(fatal=True)`.
* `media`/`mark`/`dtmf` before `start` are dropped and counted (nothing can be answered before
  the stream has a `streamSid`, §2.1); everything after `stop` is dropped and counted.
* Sending before `start` or after `stop` raises `InvalidState`: Twilio rejects messages without
  the start's `streamSid` (31951), and nothing may be sent after `stop` (§6.3).
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any, Literal

from foreman.exceptions import InvalidState
from foreman.protocols.twilio.messages import (
    FRAME_MS,
    MULAW_CHANNELS,
    MULAW_ENCODING,
    MULAW_SAMPLE_RATE,
    BadMessage,
    Connected,
    Dtmf,
    MarkEcho,
    Media,
    Start,
    Stop,
    TwilioEvent,
    Unknown,
)

logger = logging.getLogger(__name__)

Phase = Literal["waiting", "streaming", "stopped"]

DTMF_DIGITS = frozenset("0123456789*#ABCD")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

COUNTER_NAMES = (
    "frames_in",
    "media_in",
    "marks_in",
    "dtmf_in",
    "bad",
    "unknown",
    "dropped_before_start",
    "dropped_after_stop",
    "sequence_gaps",
    "input_gaps",
    "media_out",
    "marks_out",
    "clears_out",
)


class _Malformed(Exception):
    """Internal: a field is missing or has the wrong type."""


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise _Malformed(f"{name!r} missing or not {kind.__name__}")
    return value


def _number(obj: dict[str, Any], name: str) -> int:
    """Twilio sends most numbers as strings (§2.1); accept a JSON number as well."""
    value = obj.get(name)
    if isinstance(value, bool):
        raise _Malformed(f"{name!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise _Malformed(f"{name!r} is not a number: {value[:20]!r}") from None
    raise _Malformed(f"{name!r} missing or not a number")


class TwilioStream:
    """One Media Streams connection, server side. Not thread-safe; one per call."""

    def __init__(self) -> None:
        self.phase: Phase = "waiting"
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.account_sid: str | None = None
        self.custom_parameters: dict[str, str] = {}
        self.start: Start | None = None
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._last_seq: int | None = None
        self._next_ts: float | None = None  # where the next media frame should start (ms)
        self._media_prefix = ""
        self._handlers: dict[str, Callable[[dict[str, Any]], list[TwilioEvent]]] = {
            "connected": self._on_connected,
            "start": self._on_start,
            "media": self._on_media,
            "mark": self._on_mark,
            "dtmf": self._on_dtmf,
            "stop": self._on_stop,
        }

    # ---------------------------------------------------------------- inbound
    def receive(self, text: str | bytes) -> list[TwilioEvent]:
        """Parse one frame. Act on each returned event; an empty list means "nothing to do"."""
        self.counters["frames_in"] += 1
        if not isinstance(text, str):
            # Twilio only sends JSON text frames (§2.1).
            return self._bad("binary frame (Media Streams uses JSON text frames only)")
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            return self._bad("frame is not JSON")
        if not isinstance(msg, dict):
            return self._bad("frame is not a JSON object")
        event = msg.get("event")
        if not isinstance(event, str):
            return self._bad("frame has no 'event' string")
        if self.phase == "stopped":
            self.counters["dropped_after_stop"] += 1
            return []
        handler = self._handlers.get(event)
        if handler is None:
            self.counters["unknown"] += 1
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("< unknown event %.40r", event)
            return [Unknown(event, msg)]
        self._check_sequence(msg)
        try:
            return handler(msg)
        except _Malformed as exc:
            return self._bad(f"{event}: {exc}")

    def connection_lost(self) -> None:
        """The socket closed (with or without `stop`): release the call exactly as on `stop`."""
        self.phase = "stopped"

    def _bad(self, reason: str, *, fatal: bool = False) -> list[TwilioEvent]:
        self.counters["bad"] += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("< bad frame: %s", reason)
        return [BadMessage(reason, fatal)]

    def _check_sequence(self, msg: dict[str, Any]) -> None:
        # sequenceNumber increases by one per message (§2.1); a gap is worth a counter, not
        # a dropped frame (TCP delivers in order, so a gap means Twilio skipped something).
        seq = msg.get("sequenceNumber")
        if not isinstance(seq, str | int) or isinstance(seq, bool):
            return
        try:
            n = int(seq)
        except ValueError:
            return
        if self._last_seq is not None and n != self._last_seq + 1:
            self.counters["sequence_gaps"] += 1
        self._last_seq = n

    def _check_stream_sid(self, msg: dict[str, Any]) -> None:
        sid = msg.get("streamSid")
        if sid is not None and sid != self.stream_sid:
            raise _Malformed("streamSid does not match the stream's start")

    def _before_start(self) -> list[TwilioEvent]:
        self.counters["dropped_before_start"] += 1
        return []

    def _on_connected(self, msg: dict[str, Any]) -> list[TwilioEvent]:
        protocol = msg.get("protocol")
        version = msg.get("version")
        return [
            Connected(
                protocol if isinstance(protocol, str) else "",
                version if isinstance(version, str) else "",
            )
        ]

    def _on_start(self, msg: dict[str, Any]) -> list[TwilioEvent]:
        if self.phase != "waiting":
            return self._bad("second 'start' on one stream ignored")
        try:
            start = self._parse_start(msg)
        except _Malformed as exc:
            return self._bad(f"start: {exc}", fatal=True)
        fmt = (start.encoding, start.sample_rate, start.channels)
        if fmt != (MULAW_ENCODING, MULAW_SAMPLE_RATE, MULAW_CHANNELS):
            return self._bad(
                f"start: unsupported mediaFormat {fmt!r}, expected audio/x-mulaw/8000/1",
                fatal=True,
            )
        self.phase = "streaming"
        self.start = start
        self.stream_sid = start.stream_sid
        self.call_sid = start.call_sid
        self.account_sid = start.account_sid
        self.custom_parameters = start.custom_parameters
        self._media_prefix = (
            '{"event":"media","streamSid":'
            + encode_basestring_ascii(start.stream_sid)
            + ',"media":{"payload":'
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("= streaming %s call %s", start.stream_sid, start.call_sid)
        return [start]

    @staticmethod
    def _parse_start(msg: dict[str, Any]) -> Start:
        body = _field(msg, "start", dict)
        stream_sid = body.get("streamSid") or msg.get("streamSid")
        if not isinstance(stream_sid, str) or not stream_sid:
            raise _Malformed("'streamSid' missing")
        call_sid = _field(body, "callSid", str)
        account_sid = body.get("accountSid", "")
        if not isinstance(account_sid, str):
            raise _Malformed("'accountSid' is not str")
        tracks = body.get("tracks", [])
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise _Malformed("'tracks' is not a list of strings")
        params = body.get("customParameters", {})
        if params is None:
            params = {}
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        ):
            raise _Malformed("'customParameters' is not a string-to-string object")
        fmt = _field(body, "mediaFormat", dict)
        return Start(
            stream_sid=stream_sid,
            call_sid=call_sid,
            account_sid=account_sid,
            tracks=tuple(tracks),
            custom_parameters=dict(params),
            encoding=_field(fmt, "encoding", str),
            sample_rate=_number(fmt, "sampleRate"),
            channels=_number(fmt, "channels"),
        )

    def _on_media(self, msg: dict[str, Any]) -> list[TwilioEvent]:
        if self.phase == "waiting":
            return self._before_start()
        self._check_stream_sid(msg)
        body = _field(msg, "media", dict)
        payload = _field(body, "payload", str)
        # A cheap shape check instead of decoding (passthrough forwards the text as is).
        if not payload or len(payload) % 4:
            raise _Malformed("'payload' is not base64")
        track = body.get("track", "inbound")
        chunk = _number(body, "chunk")
        timestamp = _number(body, "timestamp")
        self.counters["media_in"] += 1
        event = Media(payload, chunk, timestamp, track if isinstance(track, str) else "inbound")
        # Timestamps only detect gaps (§2.2): durations come from the payload length.
        expected, self._next_ts = self._next_ts, timestamp + event.duration_ms
        if expected is not None and timestamp - expected >= FRAME_MS:
            self.counters["input_gaps"] += 1
            gap = int(timestamp - expected) // FRAME_MS * FRAME_MS
            event = Media(event.payload_b64, chunk, timestamp, event.track, gap)
        return [event]

    def _on_mark(self, msg: dict[str, Any]) -> list[TwilioEvent]:
        if self.phase == "waiting":
            return self._before_start()
        self._check_stream_sid(msg)
        name = _field(_field(msg, "mark", dict), "name", str)
        self.counters["marks_in"] += 1
        return [MarkEcho(name)]

    def _on_dtmf(self, msg: dict[str, Any]) -> list[TwilioEvent]:
        if self.phase == "waiting":
            return self._before_start()
        self._check_stream_sid(msg)
        digit = _field(_field(msg, "dtmf", dict), "digit", str)
        if digit not in DTMF_DIGITS:
            raise _Malformed(f"'digit' {digit[:5]!r} is not a DTMF key")
        self.counters["dtmf_in"] += 1
        return [Dtmf(digit)]

    def _on_stop(self, msg: dict[str, Any]) -> list[TwilioEvent]:
        body = msg.get("stop")
        call_sid = body.get("callSid") if isinstance(body, dict) else None
        if not isinstance(call_sid, str):
            call_sid = self.call_sid or ""
        self.phase = "stopped"
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("= stopped %s", self.stream_sid)
        return [Stop(call_sid)]

    # --------------------------------------------------------------- outbound
    def _require_streaming(self, what: str) -> None:
        if self.phase != "streaming":
            detail = "no start yet" if self.phase == "waiting" else "the stream has stopped"
            raise InvalidState(
                f"TwilioStream(server): cannot send {what} in phase {self.phase!r} ({detail})"
            )

    def media(self, payload_b64: str) -> str:
        """The `media` frame playing `payload_b64` (base64 µ-law, ideally whole 160-byte
        frames, §2.5). Send it as a text frame."""
        self._require_streaming("media")
        if not payload_b64:
            raise ValueError("empty media payload")
        self.counters["media_out"] += 1
        # Fast path: base64 needs no JSON escaping; anything else is escaped (never injected).
        if payload_b64.isascii() and not payload_b64.encode("ascii").translate(None, _B64_ALPHABET):
            return self._media_prefix + '"' + payload_b64 + '"}}'
        return self._media_prefix + encode_basestring_ascii(payload_b64) + "}}"

    def media_bytes(self, ulaw: bytes) -> str:
        """Like `media()`, from raw µ-law bytes."""
        return self.media(binascii.b2a_base64(ulaw, newline=False).decode("ascii"))

    def mark(self, name: str) -> str:
        """A `mark` frame; Twilio echoes `name` once the audio sent before it has played, or
        at once when a `clear` drops it (§2.4). Use unique names."""
        self._require_streaming("mark")
        if not isinstance(name, str) or not name:
            raise ValueError("a mark needs a non-empty name")
        self.counters["marks_out"] += 1
        return json.dumps(
            {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}},
            separators=(",", ":"),
        )

    def clear(self) -> str:
        """A `clear` frame: Twilio drops all queued audio and echoes every pending mark."""
        self._require_streaming("clear")
        self.counters["clears_out"] += 1
        return json.dumps({"event": "clear", "streamSid": self.stream_sid}, separators=(",", ":"))
