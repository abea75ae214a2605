"""What `foreman.client.ForemanClient` returns and raises: typed records of the control API's
JSON and one exception hierarchy. Pure: no I/O, no asyncio.

Records are frozen dataclasses built from the server's JSON objects by `Record.from_json`,
which checks the type of every field it knows and ignores the rest (the whole object stays in
`.raw`), so the server can grow without breaking older clients. A field whose JSON name is
not a Python name (`from`) says so in its metadata: `field(metadata=wire("from"))`.

    ClientError                 every failure; one line, fit to show a person
    ├── ConnectionFailed        the connection failed, broke or timed out
    │   └── ServerUnreachable   nothing answers at the URL (is `foreman serve` running?)
    ├── ApiError                the server answered an HTTP error: `.status`, `.detail`
    │   └── Unauthorized        401: missing or wrong API token
    └── UnexpectedResponse      the server answered something this client cannot read
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from foreman.exceptions import ForemanError

DEFAULT_URL = "http://127.0.0.1:8765"  # where `foreman serve` listens by default

# --- errors ---------------------------------------------------------------------------------


class ClientError(ForemanError):
    """A control-API call failed; the message is one line and names what to do."""


class ConnectionFailed(ClientError):
    """The connection to the server failed, broke off or timed out."""


class ServerUnreachable(ConnectionFailed):
    """Nothing accepted the connection at the server's URL."""

    def __init__(self, url: str) -> None:
        super().__init__(f"cannot reach foreman at {url} (is `foreman serve` running?)")
        self.url = url


class ApiError(ClientError):
    """The server answered with an HTTP error. `detail` is its `detail` field as sent (a
    string, FastAPI's list of validation errors, or an object); the message renders it."""

    def __init__(self, status: int, detail: object, message: str | None = None) -> None:
        super().__init__(message or f"HTTP {status}: {describe_detail(detail)}")
        self.status = status
        self.detail = detail


class Unauthorized(ApiError):
    """401: the server wants an API token and got none, or a wrong one."""


class UnexpectedResponse(ClientError):
    """The server answered, but not in a shape this client understands."""


def describe_detail(detail: object) -> str:
    """One line for an error `detail`: FastAPI validation errors become `field: message`."""
    if isinstance(detail, str):
        text = detail
    elif isinstance(detail, list):
        text = "; ".join(_describe_validation_error(item) for item in detail)
    elif isinstance(detail, Mapping) and isinstance(detail.get("message"), str):
        text = detail["message"]
    else:
        text = json.dumps(detail, ensure_ascii=False, default=str)
    return one_line(text)


_LOCATIONS = ("body", "query", "path", "header", "cookie")


def _describe_validation_error(item: object) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    raw = item.get("loc")
    loc = [str(part) for part in raw] if isinstance(raw, list | tuple) else []
    if len(loc) > 1 and loc[0] in _LOCATIONS:
        loc = loc[1:]  # "to", not "body.to": the user named fields, not request parts
    message = str(item.get("msg") or "invalid")
    return f"{'.'.join(loc)}: {message}" if loc else message


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace (newlines included) collapsed to single spaces, cut at `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- decoding JSON into records -------------------------------------------------------------


def wire(name: str) -> dict[str, str]:
    """Field metadata: the field's name in the JSON object, when it differs."""
    return {"wire": name}


R = TypeVar("R", bound="Record")


@dataclass(frozen=True)
class Record:
    """Base of every typed result. `raw` is the JSON object as received, unknown fields
    included (for `--json` output and for fields this client does not know yet)."""

    raw: Mapping[str, Any] = field(
        default_factory=dict, kw_only=True, repr=False, compare=False, hash=False
    )

    @classmethod
    def from_json(cls, data: object) -> Self:
        """Build from a decoded JSON object; raises UnexpectedResponse naming the field."""
        return _build(cls, data, cls.__name__)


_FieldSpec = tuple[str, str, Any, bool]
_FIELDS: dict[type, tuple[_FieldSpec, ...]] = {}


def _fields(cls: type) -> tuple[_FieldSpec, ...]:
    """(attribute, JSON name, type, required) for each field of a record class but `raw`."""
    known = _FIELDS.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    specs = tuple(
        (
            f.name,
            f.metadata.get("wire", f.name),
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init and f.name != "raw"
    )
    _FIELDS[cls] = specs
    return specs


def _build(cls: type[R], data: object, where: str) -> R:
    if not isinstance(data, Mapping):
        raise UnexpectedResponse(f"{where}: expected a JSON object, got {_show(data)}")
    values: dict[str, Any] = {}
    for name, key, tp, required in _fields(cls):
        if key in data:
            values[name] = _decode(tp, data[key], f"{where}.{key}")
        elif required:
            raise UnexpectedResponse(f"{where}: the server sent no {key!r}")
    return cls(**values, raw=dict(data))


def _decode(tp: Any, value: object, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                with contextlib.suppress(UnexpectedResponse):  # try the next option
                    return _decode(option, value, where)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (dict, Mapping):
        if isinstance(value, Mapping):
            _, item = typing.get_args(tp)
            return {str(k): _decode(item, v, f"{where}.{k}") for k, v in value.items()}
    elif origin is tuple:
        if isinstance(value, list):
            item = typing.get_args(tp)[0]
            return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    elif isinstance(tp, type) and issubclass(tp, Record):
        return _build(tp, value, where)
    raise UnexpectedResponse(f"{where}: expected {_type_name(tp)}, got {_show(value)}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _show(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health(Record):
    status: str
    version: str = ""


@dataclass(frozen=True)
class RealtimeStatus(Record):
    """The API-started voice session (`/api/realtime/status`, also what start/stop answer)."""

    active: bool
    mode: str  # "text" at rest, "voice" while the session runs
    model: str | None = None
    since: str | None = None  # ISO 8601, UTC
    last_error: str | None = None
    transport: str | None = None
    endpoint_host: str | None = None
    session_id: str | None = None  # Foreman's id, the one events and the audit log show
    provider_session_id: str | None = None  # the model provider's own id, for its logs
    counters: Mapping[str, int | float] = field(default_factory=dict)
    calls: int = 0  # live phone calls
    backend: str | None = None  # openai-realtime | openai-live | local
    usage: Mapping[str, Any] = field(default_factory=dict)  # GPT-Live: seconds, cost_usd
    components: Mapping[str, Any] | None = None  # the offline engine's VAD, STT, LLM, TTS


@dataclass(frozen=True)
class StartOptions:
    """What `start_realtime` may override; None leaves the server's configured value."""

    model: str | None = None
    voice: str | None = None
    instructions: str | None = None
    endpoint: str | None = None  # ws:// or wss:// URL of a Realtime server
    transport: str | None = None  # "websocket" | "webrtc"
    in_sr: int | None = None  # rate of the PCM16 audio pushed in
    out_format: str | None = None  # "pcm16" | "g711_ulaw" | "g711_alaw"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            key: getattr(self, key)
            for key in ("model", "voice", "instructions", "endpoint", "transport")
            if getattr(self, key) is not None
        }
        audio = {key: getattr(self, key) for key in ("in_sr", "out_format") if getattr(self, key)}
        if audio:
            body["audio"] = audio
        return body


@dataclass(frozen=True)
class ApprovalPrompt(Record):
    """A tool call waiting for (or past) a human's yes or no. Times are unix seconds."""

    id: str
    tool: str
    state: str  # pending | approved | denied | expired | cancelled
    arguments: Any = None
    risk: str = ""
    caller: str = ""
    caller_id: str | None = None
    role: str = ""
    channel: str = ""
    session_id: str = ""
    created_at: float = 0.0
    expires_at: float = 0.0
    expires_in_s: float = 0.0
    voice_confirmable: bool = False
    approver: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class AuditEntry(Record):
    """One tool decision from the audit log (`at` is unix seconds)."""

    tool: str
    decision: str  # allow | deny | invalid | approved | denied | expired | cancelled
    at: float
    id: int = 0
    session_id: str = ""
    caller: str = ""
    role: str = ""
    channel: str = ""
    call_id: str = ""
    arguments: Any = None
    reason: str = ""
    outcome: str = ""
    approver: str | None = None
    approval_id: str | None = None
    wait_s: float | None = None


@dataclass(frozen=True)
class LiveCall(Record):
    """A phone call in progress. `session_id` is the one its events carry; `caller_name` is
    set when the number belongs to the owner or a known contact."""

    call_sid: str
    session_id: str = ""
    direction: str = ""
    from_: str = field(default="", metadata=wire("from"))
    to: str = ""
    caller: str = ""
    caller_name: str | None = None
    stream_sid: str = ""
    role: str = ""
    verified: bool = False
    started_at: float = 0.0
    stats: Mapping[str, Any] = field(default_factory=dict)
    queued_ms: float = 0.0


@dataclass(frozen=True)
class FinishedCall(Record):
    """A phone call that has ended, from the persistent call log."""

    call_sid: str
    direction: str = ""
    from_: str = field(default="", metadata=wire("from"))
    to: str = ""
    role: str = ""
    verified: bool = False
    started_at: float = 0.0
    ended_at: float = 0.0
    reason: str = ""
    purpose: str = ""


@dataclass(frozen=True)
class CallList(Record):
    active: tuple[LiveCall, ...] = ()
    recent: tuple[FinishedCall, ...] = ()  # newest last


@dataclass(frozen=True)
class PlacedCall(Record):
    """An outbound call Twilio accepted; it streams back to the server once answered."""

    call_sid: str
    to: str
    purpose: str = ""
    status: str = ""


@dataclass(frozen=True)
class HangUp(Record):
    """A live call whose hang-up is under way; `session.ended` follows on the event stream."""

    call_sid: str
    status: str = ""


@dataclass(frozen=True)
class WakeStatus(Record):
    """The wake-phrase sentinel (`/api/wake/status`). `last_trigger` is the server's object
    for the last wake-up (its time and the text heard), None before the first."""

    enabled: bool
    listening: bool = False
    detector: str | None = None  # openai | ensemble | whisper | pocketsphinx; None: none
    device: str | None = None  # the microphone; None: none found
    speaker: str | None = None
    phrase: str = ""
    mode: str = "text"  # text | voice
    last_trigger: Any = None
    triggers: int = 0
    false_starts: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class Event(Record):
    """One event of `/api/events`; `seq` is 0 for `events.dropped` (a slow reader's notice)."""

    kind: str
    seq: int = 0
    at: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)


# --- say pieces -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SayPiece(Record):
    """One NDJSON line of a `say` reply. `KEY` is the JSON key that marks the kind.

    A new kind is a subclass with its `KEY`, added to `SAY_PIECES`; lines of kinds this
    client does not know are skipped."""

    KEY: ClassVar[str]


@dataclass(frozen=True)
class Delta(SayPiece):
    """A piece of the assistant's reply transcript."""

    KEY = "delta"
    text: str = field(metadata=wire("delta"))


@dataclass(frozen=True)
class ToolNotice(SayPiece):
    """The model called a tool during the turn (its result may wait for an approval)."""

    KEY = "tool"
    name: str = field(metadata=wire("tool"))
    call_id: str = ""


@dataclass(frozen=True)
class Done(SayPiece):
    """The turn is over: `status` completed, cancelled, failed, incomplete or closed (the
    session ended: `error` says why)."""

    KEY = "done"
    transcript: str = ""
    status: str = "completed"
    error: str | None = None
    conversation_id: str | None = None  # chat replies: the conversation the turn went into

    @property
    def completed(self) -> bool:
        return self.status == "completed"


# The sample rate of each audio format a `say` reply may stream (the Realtime API's: PCM16 is
# 24 kHz, G.711 is 8 kHz; https://platform.openai.com/docs/api-reference/realtime).
AUDIO_RATES: Mapping[str, int] = {"pcm16": 24000, "g711_ulaw": 8000, "g711_alaw": 8000}


@dataclass(frozen=True)
class Audio(SayPiece):
    """A piece of the assistant's spoken reply (only when `say(..., audio=True)` asked for
    it): `audio` is the raw bytes in `format` (`pcm16` little-endian mono, `g711_ulaw` or
    `g711_alaw`), at `sample_rate` (None for a format this client does not know)."""

    KEY = "audio"
    b64: str = field(metadata=wire("audio"), repr=False)
    format: str = "pcm16"

    @classmethod
    def from_json(cls, data: object) -> Self:
        piece = super().from_json(data)
        try:
            base64.b64decode(piece.b64, validate=True)
        except binascii.Error:
            raise UnexpectedResponse("Audio.audio: not base64") from None
        return piece

    @property
    def audio(self) -> bytes:
        return base64.b64decode(self.b64)

    @property
    def sample_rate(self) -> int | None:
        return AUDIO_RATES.get(self.format)


SAY_PIECES: tuple[type[SayPiece], ...] = (Delta, ToolNotice, Audio, Done)


def read_say_piece(line: str) -> SayPiece | None:
    """The piece one NDJSON line carries; None for a blank line or a kind not known here."""
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except ValueError:
        raise UnexpectedResponse(f"say: not a JSON line: {one_line(line, 60)}") from None
    if not isinstance(data, Mapping):
        raise UnexpectedResponse(f"say: expected a JSON object, got {_show(data)}")
    for kind in SAY_PIECES:
        if kind.KEY in data:
            return kind.from_json(data)
    return None
