"""`LiveClient`: the GPT-Live session protocol, sans I/O.

Feed it every server frame (`receive`), call the commands, and send what
`data_to_send()` returns; input audio frames are returned directly by `send_audio` (the hot
path skips the outbox). The phase follows one transition table:

    NEW --start()--> STARTING --session.started--> ACTIVE --close()--> CLOSING
    CLOSING --session.closed--> CLOSED     (any phase) --session.closed--> CLOSED
    STARTING --error--> FAILED             (a startup error: there will be no session)

`session.closed` is the only proof that the session was finalised (its usage is final).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

from foreman.exceptions import RemoteProtocolError
from foreman.protocols.live import client_events as ce
from foreman.protocols.live import events as ev
from foreman.protocols.live.delegations import Delegations

__all__ = ["LiveClient", "LivePhase"]


class LivePhase(enum.StrEnum):
    NEW = "new"
    STARTING = "starting"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


P = LivePhase
# (phase, server event type) -> next phase; a pair not listed keeps the phase.
TRANSITIONS: Final[dict[tuple[LivePhase, str], LivePhase]] = {
    (P.STARTING, "session.started"): P.ACTIVE,
    (P.STARTING, "error"): P.FAILED,
    (P.STARTING, "session.closed"): P.CLOSED,
    (P.ACTIVE, "session.closed"): P.CLOSED,
    (P.CLOSING, "session.closed"): P.CLOSED,
}
# Server events that make no sense in a phase: a protocol error (the frame is dropped).
FORBIDDEN: Final[dict[LivePhase, frozenset[str]]] = {
    P.NEW: frozenset({"*"}),
    P.STARTING: frozenset(
        {"session.output_audio.delta", "response.event", "session.delegation.created"}
    ),
    P.ACTIVE: frozenset({"session.started"}),
    P.CLOSING: frozenset({"session.started"}),
    P.CLOSED: frozenset({"*"}),
    P.FAILED: frozenset(),
}
_TYPE_OF: Final[dict[type, str]] = {
    ev.SessionStarted: "session.started",
    ev.SessionUpdated: "session.updated",
    ev.OutputAudioDelta: "session.output_audio.delta",
    ev.InputTranscriptDelta: "session.input_transcript.delta",
    ev.OutputTranscriptDelta: "session.output_transcript.delta",
    ev.DelegationCreated: "session.delegation.created",
    ev.ResponseEnvelope: "response.event",
    ev.Appended: "appended",
    ev.UsageUpdated: "session.usage.updated",
    ev.SessionClosed: "session.closed",
    ev.ErrorEvent: "error",
    ev.InfoEvent: "info",
}


class LiveClient:
    """One Live session on a primary WebSocket."""

    def __init__(self, session_config: Mapping[str, Any]) -> None:
        self.session_config = dict(session_config)
        self.phase = P.NEW
        self.delegations = Delegations()
        self.session_id: str | None = None
        self.model: str | None = None
        self.expires_at: int | None = None
        self.usage_seconds = 0.0
        self.close_reason: str | None = None
        self.startup_error: ev.ErrorEvent | None = None
        self._outbox: list[str] = []
        self.counters: dict[str, int] = {"frames_in": 0, "audio_out": 0, "errors": 0}

    # --- outbox ----------------------------------------------------------------------------
    @property
    def pending_output(self) -> bool:
        return bool(self._outbox)

    def data_to_send(self) -> list[str]:
        out, self._outbox = self._outbox, []
        return out

    @property
    def closed(self) -> bool:
        return self.phase is P.CLOSED

    @property
    def active(self) -> bool:
        return self.phase is P.ACTIVE

    @property
    def busy(self) -> bool:
        """Delegated work is still owed something (see `Delegations.busy`)."""
        return self.delegations.busy

    # --- commands --------------------------------------------------------------------------
    def start(self) -> None:
        if self.phase is not P.NEW:
            raise RemoteProtocolError(f"start() in phase {self.phase}")
        self._outbox.append(ce.session_start(self.session_config))
        self.phase = P.STARTING

    def send_audio(self, audio_b64: str) -> str | None:
        """The append frame for `audio_b64`, or None when the session is not active (before
        `session.started`, audio has no timeline to land on)."""
        if self.phase is not P.ACTIVE:
            return None
        return ce.input_audio_append(audio_b64)

    def append(self, kind: ce.AppendKind, text: str) -> None:
        """An append with `delegation_id: null` (required under Responses delegation)."""
        if self.phase is P.ACTIVE and text.strip():
            self._outbox.append(ce.append(kind, text))

    def send_user_text(self, text: str) -> None:
        """A typed turn: a user message for the Responses backend, then `response.create`."""
        if self.phase is not P.ACTIVE:
            return
        self._outbox.append(ce.response_item_create(ce.user_message(text)))
        self._outbox.append(self.delegations.request_response())

    def answer_call(self, call_id: str, output: str, *, continue_: bool = True) -> bool:
        """Queue the call's one output (and the one continuation once a delegation's calls
        are all answered). Returns True when that left the backend owing nothing."""
        if self.phase is not P.ACTIVE:  # closing cancels backend work: nothing to answer
            return False
        was_busy = self.delegations.busy
        self._outbox.extend(self.delegations.answer(call_id, output, continue_=continue_))
        return was_busy and not self.delegations.busy

    def close(self) -> None:
        """Ask for a graceful close; `session.closed` confirms it."""
        if self.phase in (P.STARTING, P.ACTIVE):
            self._outbox.append(ce.session_close())
            self.phase = P.CLOSING
        elif self.phase is P.NEW:
            self.phase = P.CLOSED

    # --- server frames ---------------------------------------------------------------------
    def receive(self, frame: str | bytes) -> list[Any]:
        """The parsed event, then any delegation notices it caused. Raises
        `RemoteProtocolError` for a malformed frame or one that is illegal in this phase
        (the caller drops it and carries on)."""
        event = ev.parse_server_event(frame)
        self.counters["frames_in"] += 1
        kind = _TYPE_OF.get(type(event), "unknown")
        forbidden = FORBIDDEN[self.phase]
        if "*" in forbidden or kind in forbidden:
            raise RemoteProtocolError(f"{kind} in phase {self.phase}")
        self.phase = TRANSITIONS.get((self.phase, kind), self.phase)
        out: list[Any] = [event]
        match event:
            case ev.OutputAudioDelta():
                self.counters["audio_out"] += 1
            case ev.SessionStarted():
                self.session_id, self.model = event.session_id, event.model
                self.expires_at = event.expires_at
            case ev.DelegationCreated():
                out += self.delegations.created(event.delegation_id, event.target)
            case ev.ResponseEnvelope():
                if self.phase is not P.CLOSED:
                    out += self.delegations.envelope(event.delegation_id, event.event)
            case ev.UsageUpdated():
                self.usage_seconds = event.seconds
            case ev.SessionClosed():
                self.close_reason = event.reason
                if event.seconds is not None:
                    self.usage_seconds = event.seconds
            case ev.ErrorEvent():
                self.counters["errors"] += 1
                if self.phase is P.FAILED:
                    self.startup_error = event
        return out
