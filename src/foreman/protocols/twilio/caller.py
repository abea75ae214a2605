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

import secrets
from collections import Counter

from foreman.protocols.twilio.caller_frames import (
    BINARY_FRAME,
    INVALID_MESSAGE,
    SERVER_EVENTS,
    connected_frame,
    dtmf_frame,
    json_string,
    mark_frame,
    media_frame,
    parse_server_frame,
    start_frame,
    stop_frame,
)
from foreman.protocols.twilio.messages import (
    DTMF_DIGITS,
    FRAME_BYTES,
    MULAW_CHANNELS,
    MULAW_ENCODING,
    MULAW_SAMPLE_RATE,
    CallerEvent,
    Rejected,
    ServerMark,
    ServerMedia,
    Tolerated,
)
from foreman.protocols.twilio.states import Endpoint

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
        return connected_frame()

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
        self._sid_json = json_string(stream_sid)
        return start_frame(
            self._next_seq_number(),
            stream_sid=stream_sid,
            call_sid=call_sid,
            account_sid=account_sid,
            custom_parameters=self.custom_parameters,
            tracks=tracks,
            encoding=encoding,
            sample_rate=sample_rate,
            channels=channels,
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
        return media_frame(self._seq, self._chunk, timestamp_ms, ulaw, sid_json=self._sid_json)

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
        return mark_frame(self._next_seq_number(), self.stream_sid, name)

    def dtmf(self, digit: str) -> str:
        """The caller pressed a key: `0`-`9`, `*`, `#` (`A`-`D` on some lines)."""
        if "dtmf" in self._sendable and digit not in DTMF_DIGITS:
            raise ValueError(f"{digit[:5]!r} is not a DTMF key")
        self._send("dtmf")
        self.counters["dtmf_out"] += 1
        return dtmf_frame(self._next_seq_number(), self.stream_sid, digit)

    def stop(self) -> str:
        """The stream is over (the caller hung up or the call was ended). Nothing may be
        sent after it, and the server's messages are no longer acted on."""
        self._send("stop")
        return stop_frame(self._next_seq_number(), self.stream_sid, self.account_sid, self.call_sid)

    @property
    def pending_marks(self) -> int:
        """Marks received and not yet echoed."""
        return self._pending_marks.total()

    def _next_seq_number(self) -> int:
        self._seq += 1
        return self._seq

    # ---------------------------------------------------------------- inbound
    def receive(self, frame: str | bytes) -> list[CallerEvent]:
        """Judge one frame from the server. Act on `ServerMedia` / `ServerMark` /
        `ServerClear`; count `Rejected` and `Tolerated`. Never raises."""
        self.counters["frames_in"] += 1
        parsed = parse_server_frame(frame, self.stream_sid)
        event = parsed.raw.get("event") if parsed.raw is not None else None
        next_phase = None
        if isinstance(event, str) and event in SERVER_EVENTS:
            next_phase = self._receivable.get(event)
            if next_phase is None:  # the shape may be fine; the moment is not
                when = "after stop" if self.phase == "stopped" else "before start"
                problems = parsed.problems if isinstance(parsed, Rejected) else ()
                parsed = Rejected(INVALID_MESSAGE, (f"{event} sent {when}", *problems), parsed.raw)
        if isinstance(parsed, Rejected) or next_phase is None:
            self.counters["rejected"] += 1
            return [parsed]
        if next_phase != self.phase:
            self._enter(next_phase)
        if isinstance(parsed, ServerMedia):
            self.counters["media_in"] += 1
            audio = parsed.audio
            if not audio or len(audio) % FRAME_BYTES:
                self.counters["tolerated"] += 1
                note = f"media payload of {len(audio)} bytes is not whole 160-byte frames"
                return [Tolerated(note), parsed]
            return [parsed]
        if isinstance(parsed, ServerMark):
            self.counters["marks_in"] += 1
            self._pending_marks[parsed.name] += 1
            return [parsed]
        self.counters["clears_in"] += 1
        return [parsed]


__all__ = ["BINARY_FRAME", "CALLER_COUNTER_NAMES", "INVALID_MESSAGE", "TwilioCallerStream"]


def new_sid(prefix: str) -> str:
    """A Twilio-shaped sid: `prefix` (`CA` a call, `MZ` a stream, `SM` a message) and 32
    hex digits (https://www.twilio.com/docs/glossary/what-is-a-sid)."""
    return prefix + secrets.token_hex(16)
