"""Typed events for the Twilio Media Streams WebSocket.

https://www.twilio.com/docs/voice/media-streams/websocket-messages

What the two ends' `receive` hands back. The server role (`TwilioStream`) gets Twilio's
messages: numbers that Twilio sends as JSON strings (`sequenceNumber`, `media.chunk`,
`media.timestamp`) are converted to `int` here; the media payload stays base64 text so µ-law
passthrough can forward it untouched (decode only when you need the bytes, through
`Media.payload`). The caller role (`TwilioCallerStream`, Twilio's side) gets the server's
`media`/`mark`/`clear`, judged the way Twilio judges them.

Wire names appear only in this module, `stream.py`, `caller.py` and `caller_frames.py` (the
parsers/serializers).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any

# The only format Twilio uses both ways (`start.mediaFormat`).
MULAW_ENCODING = "audio/x-mulaw"
MULAW_SAMPLE_RATE = 8000
MULAW_CHANNELS = 1
FRAME_BYTES = 160  # 20 ms of µ-law at 8 kHz
BYTES_PER_MS = 8
FRAME_MS = 20
DTMF_DIGITS = frozenset("0123456789*#ABCD")
B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


@dataclass(frozen=True, slots=True)
class Connected:
    """First frame after the upgrade. Tolerated, never required."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    """Stream metadata, sent once. `custom_parameters` are the TwiML `<Parameter>`s."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str] = field(hash=False)
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class Media:
    """Caller audio: base64 µ-law text, 160 bytes per ~20 ms.

    Forward `payload_b64` as is for µ-law passthrough; read `payload` for the raw bytes.
    Derive durations from the payload length (8 bytes per ms), not from `timestamp`.
    `gap_ms` > 0 means the timestamps skipped that much audio before this frame (whole 20 ms
    frames only): insert that much silence (0xFF) first if the model's VAD should see the pause.
    """

    payload_b64: str
    chunk: int
    timestamp: int
    track: str
    gap_ms: int = 0

    @property
    def payload(self) -> bytes:
        """The µ-law bytes (decoded on each access; cache it if you read it twice)."""
        return binascii.a2b_base64(self.payload_b64)

    @property
    def duration_ms(self) -> float:
        """Audio length from the base64 length, without decoding."""
        n = len(self.payload_b64)
        pad = self.payload_b64.count("=", max(0, n - 2))
        return ((n // 4) * 3 - pad) / BYTES_PER_MS


@dataclass(frozen=True, slots=True)
class MarkEcho:
    """Twilio reached (or, after a `clear`, dropped) the mark we sent with this name."""

    name: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    """The caller pressed a key: `0`-`9`, `*`, `#` (and `A`-`D` on some lines)."""

    digit: str


@dataclass(frozen=True, slots=True)
class Stop:
    """The stream is over (caller hung up, or the call was ended). Release the call."""

    call_sid: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """A well-formed message with an `event` this module does not know. Ignore it."""

    event: str
    raw: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A frame that could not be understood. `fatal` means the stream cannot go on
    (a `start` that is malformed or announces a format other than µ-law/8000/1): end the call
    with `reason`. Non-fatal ones are counted and dropped; the call continues."""

    reason: str
    fatal: bool = False


TwilioEvent = Connected | Start | Media | MarkEcho | Dtmf | Stop | Unknown | BadMessage


# What the caller role (Twilio's side) hands back. `raw` is the parsed JSON object, for test
# doubles that record what the server sent; it takes no part in equality.


@dataclass(frozen=True, slots=True)
class ServerMedia:
    """Audio the server sent: queue `audio` (µ-law) behind everything already queued."""

    payload_b64: str
    audio: bytes
    raw: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ServerMark:
    """A mark the server sent: echo `name` (`TwilioCallerStream.mark`) once all audio queued
    before it has played, at once if nothing is queued, or at once after a `clear`."""

    name: str
    raw: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ServerClear:
    """The server asked to drop all queued audio: drop it and echo every pending mark."""

    raw: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame Twilio would not act on: error `code` (31950 for a binary frame, 31951 for an
    invalid message), with every rule it breaks in `problems`. Twilio logs it and carries on;
    so does the caller role. `raw` is None when the frame was not a JSON object."""

    code: int
    problems: tuple[str, ...]
    raw: dict[str, Any] | None = field(default=None, hash=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Tolerated:
    """Accepted, but not the way to do it (e.g. audio that is not whole 160-byte frames makes
    Twilio's playback jitter). Comes just before the event it is about."""

    reason: str


CallerEvent = ServerMedia | ServerMark | ServerClear | Rejected | Tolerated

__all__ = [
    "B64_ALPHABET",
    "BYTES_PER_MS",
    "DTMF_DIGITS",
    "FRAME_BYTES",
    "FRAME_MS",
    "MULAW_CHANNELS",
    "MULAW_ENCODING",
    "MULAW_SAMPLE_RATE",
    "BadMessage",
    "CallerEvent",
    "Connected",
    "Dtmf",
    "MarkEcho",
    "Media",
    "Rejected",
    "ServerClear",
    "ServerMark",
    "ServerMedia",
    "Start",
    "Stop",
    "Tolerated",
    "TwilioEvent",
    "Unknown",
]
