"""`TwilioStream`: the sans-I/O Media Streams protocol for one call, server role.

https://www.twilio.com/docs/voice/media-streams/websocket-messages

Feed every WebSocket frame to `receive()` and act on the events it returns; ask `media()`,
`mark()` and `clear()` for the text frames to send. It never touches a socket or a clock.
Phases follow the server rows of the table in `states.py`:

    waiting ──start──> streaming ──stop / connection_lost()──> stopped
       └────────────── stop / connection_lost() ──────────────────┘

* A bad frame never raises out of `receive()`: binary, non-JSON, malformed or unknown frames
  come back as `BadMessage` / `Unknown` and are counted. A `start` that is malformed or
  announces another format than µ-law/8000/1 is a `BadMessage(fatal=True)`; a `media` whose
  payload is not base64 is a (non-fatal) `BadMessage`, so it never reaches an encoder.
* `media`/`mark`/`dtmf` before `start` are dropped and counted (nothing can be answered before
  the stream has a `streamSid`); everything after `stop` is dropped and counted.
* Sending before `start` raises `InvalidState` (our bug: Twilio rejects messages without the
  start's `streamSid`, error 31951). Sending after `stop` or `connection_lost()` raises
  `SessionClosed`: the caller hung up while audio was going out, an ordinary end of a call.
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from foreman.protocols.twilio.messages import (
    B64_ALPHABET,
    BYTES_PER_MS,
    DTMF_DIGITS,
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
from foreman.protocols.twilio.states import ENDED, Endpoint, Phase

logger = logging.getLogger(__name__)

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
    """Internal: a field is missing or has the wrong type. `fatal` marks a `start` the stream
    cannot go on without."""

    def __init__(self, reason: str, *, fatal: bool = False) -> None:
        super().__init__(reason)
        self.fatal = fatal


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise _Malformed(f"{name!r} missing or not {kind.__name__}")
    return value


def _number(obj: dict[str, Any], name: str) -> int:
    """Twilio sends most numbers as strings; accept a JSON number as well."""
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


class TwilioStream(Endpoint):
    """One Media Streams connection, server side. Not thread-safe; one per call."""

    role = "server"
    label = "TwilioStream(server)"

    def __init__(self) -> None:
        super().__init__()
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
        if self.phase == ENDED:  # after the end everything is dropped, garbage included
            self.counters["dropped_after_stop"] += 1
            return []
        if not isinstance(text, str):
            # Twilio only sends JSON text frames.
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
        next_phase = self._receivable.get(event)
        if next_phase is None:
            return self._not_receivable(event, msg)
        self._check_sequence(msg)
        try:
            events = self._handlers[event](msg)
        except _Malformed as exc:
            return self._bad(f"{event}: {exc}", fatal=exc.fatal)
        if next_phase != self.phase:
            self._enter(next_phase)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("= %s %s", next_phase, self.stream_sid)
        return events

    def _not_receivable(self, event: str, msg: dict[str, Any]) -> list[TwilioEvent]:
        """A frame the table does not allow now (or an unknown one): dropped or reported,
        never raised. After the end everything is dropped, unknown events included."""
        if self.phase == ENDED:
            self.counters["dropped_after_stop"] += 1
            return []
        if event not in self._handlers:
            self.counters["unknown"] += 1
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("< unknown event %.40r", event)
            return [Unknown(event, msg)]
        self._check_sequence(msg)
        if self.phase == "waiting":
            # Nothing can be answered before the stream has a streamSid.
            self.counters["dropped_before_start"] += 1
            return []
        return self._bad(f"{event!r} is not allowed in phase {self.phase!r} (ignored)")

    def _bad(self, reason: str, *, fatal: bool = False) -> list[TwilioEvent]:
        self.counters["bad"] += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("< bad frame: %s", reason)
        return [BadMessage(reason, fatal)]

    def _check_sequence(self, msg: dict[str, Any]) -> None:
        # sequenceNumber increases by one per message; a gap is worth a counter, not a
        # dropped frame (TCP delivers in order, so a gap means Twilio skipped something).
        seq = msg.get("sequenceNumber")
        if not isinstance(seq, (str, int)) or isinstance(seq, bool):
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
        try:
            start = self._parse_start(msg)
        except _Malformed as exc:
            raise _Malformed(str(exc), fatal=True) from None
        fmt = (start.encoding, start.sample_rate, start.channels)
        if fmt != (MULAW_ENCODING, MULAW_SAMPLE_RATE, MULAW_CHANNELS):
            raise _Malformed(
                f"unsupported mediaFormat {fmt!r}, expected audio/x-mulaw/8000/1", fatal=True
            )
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
        # The hot path (50 frames/s per call): fields read inline, the payload checked by
        # shape instead of decoded (passthrough forwards the text as is).
        self._check_stream_sid(msg)
        body = msg.get("media")
        if not isinstance(body, dict):
            raise _Malformed("'media' missing or not dict")
        payload = body.get("payload")
        if not isinstance(payload, str):
            raise _Malformed("'payload' missing or not str")
        # Whole 4-char groups, the base64 alphabet (one C-level translate), and `=` only as
        # trailing padding; the Realtime encoder and b64decode would refuse anything else.
        n = len(payload)
        if (
            not n
            or n % 4
            or not payload.isascii()
            or payload.encode("ascii").translate(None, B64_ALPHABET)
        ):
            raise _Malformed("'payload' is not base64")
        pad = payload.find("=")
        if pad >= 0 and (pad < n - 2 or payload[-1] != "="):
            raise _Malformed("'payload' is not base64 ('=' inside)")
        chunk = _number(body, "chunk")
        timestamp = _number(body, "timestamp")
        track = body.get("track", "inbound")
        if not isinstance(track, str):
            track = "inbound"
        self.counters["media_in"] += 1
        # Timestamps only detect gaps: durations come from the payload length (the same sum
        # as `Media.duration_ms`, from what was measured above).
        duration_ms = ((n >> 2) * 3 - (n - pad if pad >= 0 else 0)) / BYTES_PER_MS
        expected, self._next_ts = self._next_ts, timestamp + duration_ms
        if expected is not None and timestamp - expected >= FRAME_MS:
            self.counters["input_gaps"] += 1
            gap = int(timestamp - expected) // FRAME_MS * FRAME_MS
            return [Media(payload, chunk, timestamp, track, gap)]
        return [Media(payload, chunk, timestamp, track)]

    def _on_mark(self, msg: dict[str, Any]) -> list[TwilioEvent]:
        self._check_stream_sid(msg)
        name = _field(_field(msg, "mark", dict), "name", str)
        self.counters["marks_in"] += 1
        return [MarkEcho(name)]

    def _on_dtmf(self, msg: dict[str, Any]) -> list[TwilioEvent]:
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
        return [Stop(call_sid)]

    # --------------------------------------------------------------- outbound
    def media(self, payload_b64: str) -> str:
        """The `media` frame playing `payload_b64` (base64 µ-law, ideally whole 160-byte
        frames). Send it as a text frame. Raises `SessionClosed` once the stream has ended
        (stop the sender: the caller is gone), `InvalidState` before `start`."""
        if "media" not in self._sendable:  # the table's check, inlined: media keeps the phase
            raise self.refusal("media")
        if not payload_b64:
            raise ValueError("empty media payload")
        self.counters["media_out"] += 1
        # Fast path: base64 needs no JSON escaping; anything else is escaped (never injected).
        if payload_b64.isascii() and not payload_b64.encode("ascii").translate(None, B64_ALPHABET):
            return self._media_prefix + '"' + payload_b64 + '"}}'
        return self._media_prefix + encode_basestring_ascii(payload_b64) + "}}"

    def media_bytes(self, ulaw: bytes) -> str:
        """Like `media()`, from raw µ-law bytes."""
        return self.media(binascii.b2a_base64(ulaw, newline=False).decode("ascii"))

    def mark(self, name: str) -> str:
        """A `mark` frame; Twilio echoes `name` once the audio sent before it has played, or
        at once when a `clear` drops it. Use unique names. Raises like `media()`."""
        self._send("mark")
        if not isinstance(name, str) or not name:
            raise ValueError("a mark needs a non-empty name")
        self.counters["marks_out"] += 1
        return json.dumps(
            {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}},
            separators=(",", ":"),
        )

    def clear(self) -> str:
        """A `clear` frame: Twilio drops all queued audio and echoes every pending mark.
        Raises like `media()`."""
        self._send("clear")
        self.counters["clears_out"] += 1
        return json.dumps({"event": "clear", "streamSid": self.stream_sid}, separators=(",", ":"))


__all__ = ["COUNTER_NAMES", "DTMF_DIGITS", "Phase", "TwilioStream"]
