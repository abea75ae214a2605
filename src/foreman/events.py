"""Every kind of event Foreman publishes on its bus (and so on `GET /api/events`).

Small frozen records with JSON-safe fields; `kind` is the name clients filter on. Sessions
of every channel (phone call, desk voice, chat) share the `session.*` family, keyed by the
one `session_id` that status, events and the audit log all show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from foreman.bus import event_data

__all__ = [
    "ApprovalDecided",
    "ApprovalPrompted",
    "BargeIn",
    "CallIncoming",
    "CallPlaced",
    "CallRecorded",
    "CallRefused",
    "ChatEnded",
    "ChatStarted",
    "DtmfPressed",
    "Event",
    "HistoryTurnAdded",
    "ModeChanged",
    "SessionEnded",
    "SessionFailed",
    "SessionReady",
    "SessionStarted",
    "SessionWarning",
    "SpeechStarted",
    "SpeechStopped",
    "ToolAudited",
    "ToolDecided",
    "ToolRequested",
    "ToolResultSent",
    "TranscriptLine",
    "WakeChanged",
    "WakeHeard",
    "WakeTriggered",
]


class Event:
    """Base of the records below: `data()` is their fields."""

    __slots__ = ()
    kind: ClassVar[str] = ""

    def data(self) -> dict[str, Any]:
        return event_data(self)


class _Snapshot(Event):
    """An event that carries one prepared mapping (a prompt, a record) as its data."""

    __slots__ = ()
    body: Mapping[str, Any]

    def data(self) -> dict[str, Any]:
        return dict(self.body)


# --- sessions ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    """`labels` are the channel's own facts (a call's `call_sid`, `direction`, `purpose`),
    given at the top level of `data()`."""

    kind: ClassVar[str] = "session.started"
    session_id: str
    channel: str  # phone | local_voice | chat
    caller: str
    role: str
    backend: str = ""
    model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        out = event_data(self)
        return {**out.pop("labels"), **out}


@dataclass(frozen=True, slots=True)
class SessionReady(Event):
    kind: ClassVar[str] = "session.ready"
    session_id: str
    model: str
    provider_session_id: str  # the model provider's own id, for its logs


@dataclass(frozen=True, slots=True)
class SessionFailed(Event):
    """A session could not start (the backend refused, no model reachable)."""

    kind: ClassVar[str] = "session.failed"
    session_id: str
    error: str


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    kind: ClassVar[str] = "session.ended"
    session_id: str
    reason: str
    error: str | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TranscriptLine(Event):
    """A whole utterance. For the assistant after a barge-in, `heard_ms` is where the user
    stopped hearing it (None: heard to the end, or unknown)."""

    kind: ClassVar[str] = "session.transcript"
    session_id: str
    role: str  # user | assistant
    text: str
    heard_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SpeechStarted(Event):
    kind: ClassVar[str] = "session.speech_started"
    session_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped(Event):
    kind: ClassVar[str] = "session.speech_stopped"
    session_id: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class BargeIn(Event):
    kind: ClassVar[str] = "session.barge_in"
    session_id: str
    segment: str
    heard_ms: int


@dataclass(frozen=True, slots=True)
class DtmfPressed(Event):
    kind: ClassVar[str] = "session.dtmf"
    session_id: str
    digit: str


@dataclass(frozen=True, slots=True)
class ToolRequested(Event):
    kind: ClassVar[str] = "session.tool_request"
    session_id: str
    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class SessionWarning(Event):
    kind: ClassVar[str] = "session.warning"
    session_id: str
    message: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ModeChanged(Event):
    kind: ClassVar[str] = "mode"
    mode: str  # text | voice


# --- the wake sentinel ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WakeChanged(Event):
    """The sentinel was turned on or off, started or stopped listening, or failed."""

    kind: ClassVar[str] = "wake.changed"
    enabled: bool
    listening: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WakeTriggered(Event):
    """The wake phrase was heard: voice mode starts."""

    kind: ClassVar[str] = "wake.triggered"
    text: str
    detector: str


@dataclass(frozen=True, slots=True)
class WakeHeard(Event):
    """Speech that was not the wake phrase (a false start), or came within the cooldown."""

    kind: ClassVar[str] = "wake.heard"
    text: str
    cooling_down: bool = False


# --- phone calls ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallIncoming(Event):
    kind: ClassVar[str] = "call.incoming"
    call_sid: str
    caller: str
    to: str


@dataclass(frozen=True, slots=True)
class CallRefused(Event):
    kind: ClassVar[str] = "call.refused"
    call_sid: str
    reason: str


@dataclass(frozen=True, slots=True)
class CallPlaced(Event):
    kind: ClassVar[str] = "call.placed"
    call_sid: str
    to: str
    purpose: str


@dataclass(frozen=True, slots=True)
class CallRecorded(_Snapshot):
    kind: ClassVar[str] = "call.recorded"
    body: Mapping[str, Any]


# --- tools and approvals --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ToolDecided(Event):
    kind: ClassVar[str] = "tool.call"
    session_id: str
    call_id: str
    tool: str
    decision: str  # allow | deny | needsapproval
    reason: str


@dataclass(frozen=True, slots=True)
class ToolResultSent(Event):
    kind: ClassVar[str] = "tool.result"
    session_id: str
    call_id: str
    ok: bool


@dataclass(frozen=True, slots=True)
class ToolAudited(_Snapshot):
    kind: ClassVar[str] = "tool.audit"
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ApprovalPrompted(_Snapshot):
    kind: ClassVar[str] = "approval.prompt"
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ApprovalDecided(_Snapshot):
    kind: ClassVar[str] = "approval.decided"
    body: Mapping[str, Any]


# --- chat and history -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChatStarted(Event):
    """A chat turn began (`session_id` is the turn's own id: its tool calls, approvals and
    audit rows carry it)."""

    kind: ClassVar[str] = "chat.started"
    session_id: str
    conversation_id: str


@dataclass(frozen=True, slots=True)
class ChatEnded(Event):
    """A chat turn ended: `status` completed | stopped (its reader went away) | failed."""

    kind: ClassVar[str] = "chat.ended"
    session_id: str
    conversation_id: str
    status: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryTurnAdded(Event):
    """A turn was stored (durably: it survives a crash from now on). `turn` is its kind
    (typed, spoken, reply, speech, tool_call, tool_result, approval, summary)."""

    kind: ClassVar[str] = "history.turn"
    conversation_id: str
    seq: int
    turn: str
    role: str
    text: str
    channel: str
    session_id: str
