"""`RealtimeSession`: the sans-I/O Realtime GA state machine.

The I/O layer feeds every received text frame to `receive()` and sends whatever text
`send()` / `send_audio()` return. Nothing here awaits, sleeps, reads a clock or touches a
socket. Phases (transitions are the tables below; anything else is illegal):

    CONNECTING --recv session.created--> CREATED --send session.update--> CONFIGURING
    CONFIGURING --recv session.updated--> CONFIGURED
    any --fatal error / protocol violation--> ERROR (sticky)      any --close()--> CLOSED

Illegal sends raise `InvalidState` (our bug); illegal receives raise `RemoteProtocolError`
and put the session in ERROR (the peer's bug). A frame that does not parse raises
`RemoteProtocolError` and changes nothing: log it and keep reading.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final

from foreman.audio.formats import PCM16_24K, AudioFormat
from foreman.exceptions import AudioFormatError, InvalidState, RemoteProtocolError
from foreman.protocols.realtime import client_events as ce
from foreman.protocols.realtime import server_events as se
from foreman.protocols.realtime.audio_ledger import AudioLedger, b64_decoded_len
from foreman.protocols.realtime.calls import FunctionCallAssembler, FunctionCallReady
from foreman.protocols.realtime.errors import (
    BETA_REFUSED_CLOSE_CODE,
    RECOVERABLE_CLOSE_CODES,
    ErrorNotice,
    classify_error,
)
from foreman.protocols.realtime.parser import (
    encode_audio_append,
    encode_client_event,
    parse_server_event,
)
from foreman.protocols.realtime.session_config import check_ga_response, check_ga_session
from foreman.protocols.realtime.wire_formats import format_from_wire

__all__ = ["ErrorNotice", "FunctionCallReady", "Phase", "RealtimeSession"]

_log = logging.getLogger("foreman.realtime")


class Phase(enum.StrEnum):
    CONNECTING = "connecting"  # socket open, waiting for session.created
    CREATED = "created"  # session.created arrived; send session.update next
    CONFIGURING = "configuring"  # session.update sent, waiting for session.updated
    CONFIGURED = "configured"  # session.updated arrived: audio and responses may flow
    CLOSED = "closed"
    ERROR = "error"  # sticky: a fatal error or a protocol violation


class _Any:
    """Table wildcard: any event class not listed for that phase."""


_ILLEGAL: Final = None
_TRANSITIONS = dict[tuple[Phase, type[Any]], Phase | None]

# Received server events: (phase, event class) -> next phase; None marks an illegal event.
_RECV: _TRANSITIONS = {
    (Phase.CONNECTING, se.SessionCreated): Phase.CREATED,
    (Phase.CONNECTING, se.ErrorEvent): Phase.CONNECTING,
    (Phase.CONNECTING, se.UnknownEvent): Phase.CONNECTING,
    (Phase.CONNECTING, se.ConversationCreated): Phase.CONNECTING,
    (Phase.CONNECTING, se.RateLimitsUpdated): Phase.CONNECTING,
    (Phase.CREATED, se.SessionCreated): _ILLEGAL,
    (Phase.CREATED, _Any): Phase.CREATED,
    (Phase.CONFIGURING, se.SessionCreated): _ILLEGAL,
    (Phase.CONFIGURING, se.SessionUpdated): Phase.CONFIGURED,
    (Phase.CONFIGURING, _Any): Phase.CONFIGURING,
    (Phase.CONFIGURED, se.SessionCreated): _ILLEGAL,
    (Phase.CONFIGURED, _Any): Phase.CONFIGURED,
}

# Sent client events. Before our session.update nothing that depends on the configuration
# (audio format, turn detection, voice) may go out; context items may.
_SEND: _TRANSITIONS = {
    (Phase.CREATED, ce.SessionUpdate): Phase.CONFIGURING,
    (Phase.CREATED, ce.ConversationItemCreate): Phase.CREATED,
    (Phase.CREATED, ce.ConversationItemRetrieve): Phase.CREATED,
    (Phase.CREATED, ce.ConversationItemDelete): Phase.CREATED,
    (Phase.CREATED, ce.InputAudioBufferClear): Phase.CREATED,
    # Events sent after session.update are applied after it (one ordered socket), so
    # pipelining audio and response.create behind it is correct.
    (Phase.CONFIGURING, _Any): Phase.CONFIGURING,
    (Phase.CONFIGURED, _Any): Phase.CONFIGURED,
}

_SENT_ID_MEMORY = 256  # client event ids remembered to match echoed error.event_id
_ITEM_MEMORY = 256


def _next_phase(table: _TRANSITIONS, phase: Phase, cls: type[Any]) -> Phase | None:
    key = (phase, cls)
    if key in table:
        return table[key]
    return table.get((phase, _Any))


class RealtimeSession:
    """One Realtime GA session, client side. Feed it frames; send what it returns."""

    def __init__(self, *, event_id_prefix: str = "fm-") -> None:
        self.phase = Phase.CONNECTING
        self.session_id: str | None = None
        self.model: str | None = None
        self.effective_session: dict[str, Any] | None = None
        self.active_response_id: str | None = None  # of the default conversation
        self.last_error: str | None = None  # one line: why the session is in ERROR
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()  # latest view, no audio
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "events_in",
                "events_out",
                "audio_bytes_in",
                "audio_bytes_out",
                "errors",
                "unknown_events",
                "bad_frames",
                "responses",
                "function_calls",
            ),
            0,
        )
        self.output_format: AudioFormat = PCM16_24K
        self._requested_format: AudioFormat | None = None  # from our last session.update
        self._response_formats: dict[str, AudioFormat] = {}
        self._ledger = AudioLedger()
        self._calls = FunctionCallAssembler()
        self._sent_ids: OrderedDict[str, str] = OrderedDict()
        self._id_prefix = event_id_prefix
        self._seq = 0
        self._handlers: dict[type[Any], Callable[[Any, list[object]], None]] = {
            se.SessionCreated: self._on_session,
            se.SessionUpdated: self._on_session,
            se.ErrorEvent: self._on_error,
            se.UnknownEvent: self._on_unknown,
            se.ResponseCreated: self._on_response_created,
            se.ResponseDone: self._on_response_done,
            se.ResponseOutputItemAdded: self._on_output_item_added,
            se.ResponseOutputItemDone: self._on_output_item_done,
            se.ResponseFunctionCallArgumentsDelta: self._on_args_delta,
            se.ResponseFunctionCallArgumentsDone: self._on_args_done,
            se.ResponseOutputAudioDelta: self._on_audio_delta,
            se.ConversationItemAdded: self._on_item,
            se.ConversationItemCreated: self._on_item,
            se.ConversationItemDone: self._on_item,
            se.ConversationItemDeleted: self._on_item_deleted,
            se.ConversationItemTruncated: self._on_truncated,
        }

    # --- receiving --------------------------------------------------------------------------
    def receive(self, data: str | bytes) -> list[object]:
        """Parse one server frame and update state.

        Returns `[event, *notices]`: the typed `ServerEvent` first, then what it implies
        (`FunctionCallReady` for each finished tool call, `ErrorNotice` for an `error`).
        On a fatal `ErrorNotice` the phase is ERROR: close the connection and report it.
        """
        if self.phase in (Phase.CLOSED, Phase.ERROR):
            raise InvalidState(f"server event received in state {self.phase.name} (client role)")
        try:
            event = parse_server_event(data)
        except RemoteProtocolError:
            self.counters["bad_frames"] += 1
            raise
        self.counters["events_in"] += 1
        cls = type(event)
        nxt = _next_phase(_RECV, self.phase, cls)
        if nxt is None:
            reason = f"role server: event {event.type} is illegal in state {self.phase.name}"
            self._fail(reason)
            raise RemoteProtocolError(reason)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("< %s", event.type)
        out: list[object] = [event]
        handler = self._handlers.get(cls)
        if handler is not None:
            handler(event, out)
        if not self._failed():  # a fatal error inside the handler is sticky
            if nxt is not self.phase and _log.isEnabledFor(logging.DEBUG):
                _log.debug("= %s -> %s", self.phase.name, nxt.name)
            self.phase = nxt
        return out

    def _on_session(self, ev: se.SessionCreated | se.SessionUpdated, out: list[object]) -> None:
        session = ev.session
        self.effective_session = session
        sid = session.get("id")
        if isinstance(sid, str):
            self.session_id = sid
        model = session.get("model")
        if isinstance(model, str):
            self.model = model
        fmt = _output_format(session)
        if fmt is None and isinstance(ev, se.SessionUpdated):
            fmt = self._requested_format  # an echo without audio keeps what we asked for
        if fmt is not None:
            self.output_format = fmt

    def _on_error(self, ev: se.ErrorEvent, out: list[object]) -> None:
        self.counters["errors"] += 1
        echoed = ev.error_event_id
        client_type = self._sent_ids.get(echoed) if echoed else None
        if self.phase is Phase.CONNECTING:
            severity: Any = "fatal"  # the session never started (bad key, beta header, ...)
        else:
            severity = classify_error(
                ev.code,
                client_event_type=client_type,
                configured=self.phase is Phase.CONFIGURED,
                param=ev.param,
            )
        notice = ErrorNotice(severity, ev.code, ev.message, echoed, ev.param, client_type)
        out.append(notice)
        if notice.fatal:
            self._fail(f"{ev.code or ev.error_type or 'error'}: {ev.message}")

    def _on_unknown(self, ev: se.UnknownEvent, out: list[object]) -> None:
        self.counters["unknown_events"] += 1

    def _on_response_created(self, ev: se.ResponseCreated, out: list[object]) -> None:
        self.counters["responses"] += 1
        response = ev.response
        # Out-of-band responses (conversation "none") carry conversation_id null and may run
        # beside the default one; only the default conversation has an active response.
        if response.get("conversation_id", "") is not None and ev.response_id:
            self.active_response_id = ev.response_id
        fmt = _output_format(response)
        if fmt is not None and ev.response_id:
            self._response_formats[ev.response_id] = fmt

    def _on_response_done(self, ev: se.ResponseDone, out: list[object]) -> None:
        if ev.response_id == self.active_response_id or not ev.response_id:
            self.active_response_id = None
        self._response_formats.pop(ev.response_id, None)
        self._emit_calls(self._calls.response_done(ev.response), out)
        if ev.status == "failed":
            # A failed response is reported in response.done, not as an `error`.
            details = ev.response.get("status_details")
            error = details.get("error") if isinstance(details, dict) else None
            error = error if isinstance(error, dict) else {}
            code = error.get("code") if isinstance(error.get("code"), str) else None
            message = error.get("message") or error.get("type") or "response failed"
            severity = classify_error(code, client_event_type=None, configured=True)
            self.counters["errors"] += 1
            out.append(
                ErrorNotice(severity, code, str(message), None, None, ce.ResponseCreate.type)
            )
            if severity == "fatal":
                self._fail(f"{code}: {message}")

    def _on_output_item_added(self, ev: se.ResponseOutputItemAdded, out: list[object]) -> None:
        self._remember_item(ev.item)
        self._calls.item_added(ev.response_id, ev.item)

    def _on_output_item_done(self, ev: se.ResponseOutputItemDone, out: list[object]) -> None:
        self._remember_item(ev.item)
        self._emit_calls([self._calls.item_done(ev.response_id, ev.item)], out)

    def _on_args_delta(self, ev: se.ResponseFunctionCallArgumentsDelta, out: list[object]) -> None:
        self._calls.delta(ev.call_id, ev.delta, ev.item_id, ev.response_id)

    def _on_args_done(self, ev: se.ResponseFunctionCallArgumentsDone, out: list[object]) -> None:
        call = self._calls.done(ev.call_id, ev.name, ev.arguments, ev.item_id, ev.response_id)
        self._emit_calls([call], out)

    def _on_audio_delta(self, ev: se.ResponseOutputAudioDelta, out: list[object]) -> None:
        nbytes = b64_decoded_len(ev.delta)
        self.counters["audio_bytes_in"] += nbytes
        fmt = self._response_formats.get(ev.response_id, self.output_format)
        self._ledger.add(ev.item_id, ev.content_index, nbytes, fmt)

    def _on_item(self, ev: Any, out: list[object]) -> None:
        self._remember_item(ev.item)

    def _on_item_deleted(self, ev: se.ConversationItemDeleted, out: list[object]) -> None:
        self.items.pop(ev.item_id, None)
        self._ledger.forget(ev.item_id)

    def _on_truncated(self, ev: se.ConversationItemTruncated, out: list[object]) -> None:
        self._ledger.truncated(ev.item_id, ev.content_index, ev.audio_end_ms)

    def _emit_calls(self, calls: Sequence[FunctionCallReady | None], out: list[object]) -> None:
        for call in calls:
            if call is not None:
                self.counters["function_calls"] += 1
                out.append(call)

    def _remember_item(self, item: dict[str, Any]) -> None:
        item_id = item.get("id")
        if not isinstance(item_id, str):
            return
        self.items[item_id] = item
        self.items.move_to_end(item_id)
        if len(self.items) > _ITEM_MEMORY:
            self.items.popitem(last=False)

    # --- sending ---------------------------------------------------------------------------
    def send(self, event: ce.ClientEvent) -> str:
        """Check that `event` may be sent now, record it, and return its JSON text.

        Events other than audio appends get an `event_id` when they have none, so that an
        `error` can be matched to the event that caused it. Raises `InvalidState` when the
        phase forbids the event, ValueError for a session or response body the GA service
        would reject (no `session.type`, beta fields such as `modalities`).
        """
        nxt = self._check_send(event.type, type(event))
        text: str | None = None
        if isinstance(event, ce.InputAudioBufferAppend):
            text = encode_audio_append(event.audio)  # checks alphabet and the 15 MiB limit
            if event.event_id is not None:
                text = None  # rare: let the generic encoder add the id
        elif isinstance(event, ce.SessionUpdate):
            check_ga_session(event.session)
            fmt = _output_format(event.session)
            if fmt is not None:
                self._requested_format = fmt
        elif isinstance(event, ce.ResponseCreate) and event.response is not None:
            check_ga_response(event.response)
        if isinstance(event, ce.InputAudioBufferAppend):
            self.counters["audio_bytes_out"] += b64_decoded_len(event.audio)
        else:
            event_id = getattr(event, "event_id", None)
            if event_id is None:
                self._seq += 1
                event_id = f"{self._id_prefix}{self._seq}"
                event = dataclasses.replace(event, event_id=event_id)  # type: ignore[call-arg]
            self._sent_ids[event_id] = event.type
            if len(self._sent_ids) > _SENT_ID_MEMORY:
                self._sent_ids.popitem(last=False)
            if isinstance(event, ce.ConversationItemTruncate):
                # The item is now (at most) this long; a later truncate must not claim more.
                self._ledger.truncated(event.item_id, event.content_index, event.audio_end_ms)
        self.counters["events_out"] += 1
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("> %s", event.type)
        if nxt is not self.phase:
            _log.debug("= %s -> %s", self.phase.name, nxt.name)
            self.phase = nxt
        return text if text is not None else encode_client_event(event)

    def send_audio(self, b64_audio: str) -> str:
        """`input_audio_buffer.append` text for one chunk (hot path: about every 20 ms)."""
        if self.phase is not Phase.CONFIGURED and self.phase is not Phase.CONFIGURING:
            self._check_send(ce.InputAudioBufferAppend.type, ce.InputAudioBufferAppend)
        text = encode_audio_append(b64_audio)
        self.counters["audio_bytes_out"] += b64_decoded_len(b64_audio)
        self.counters["events_out"] += 1
        return text

    def _check_send(self, name: str, cls: type[Any]) -> Phase:
        nxt = _next_phase(_SEND, self.phase, cls)
        if nxt is None:
            hint = {
                Phase.CONNECTING: "wait for session.created",
                Phase.CREATED: "send session.update first",
                Phase.CLOSED: "the session is closed",
                Phase.ERROR: f"the session failed: {self.last_error}",
            }.get(self.phase, "")
            raise InvalidState(f"role client cannot send {name} in state {self.phase.name}: {hint}")
        return nxt

    def close(self) -> None:
        """Mark the session closed (idempotent). ERROR stays ERROR so the reason survives."""
        if self.phase is not Phase.ERROR:
            self.phase = Phase.CLOSED

    def connection_lost(self, code: int | None, reason: str = "") -> bool:
        """The socket closed (`code` None when it dropped without a close frame).

        A close we asked for (`close()` first) or a normal 1000 close leaves CLOSED; anything
        else is ERROR with a one-line `last_error`, unless a fatal error already said why.
        Returns True when reconnecting is worthwhile; remember that a new
        connection is a new session.
        """
        if self.phase is Phase.CLOSED or self.phase is Phase.ERROR:
            return False
        if code == 1000:
            self.phase = Phase.CLOSED
            return False
        detail = f": {reason}" if reason else ""
        if code == BETA_REFUSED_CLOSE_CODE:
            self._fail(f"connection closed (4000{detail}): the service refused the beta shape")
            return False
        self._fail("connection lost" if code is None else f"connection closed ({code}{detail})")
        return code is None or code in RECOVERABLE_CLOSE_CODES

    def _failed(self) -> bool:
        return self.phase is Phase.ERROR

    def _fail(self, reason: str) -> None:
        self.last_error = reason
        self.phase = Phase.ERROR
        _log.debug("= ERROR: %s", reason)

    # --- audio accounting for barge-in ------------------------------------------------------
    def audio_received_ms(self, item_id: str, content_index: int = 0) -> int:
        """Milliseconds of output audio received for the item, in its output format."""
        return self._ledger.received_ms(item_id, content_index)

    def clamp_truncate(
        self, item_id: str, content_index: int, heard_ms: float
    ) -> ce.ConversationItemTruncate | None:
        """The truncate to send after a barge-in, or None when none should be sent.

        None when the item is unknown or when `heard_ms` covers all the audio received
        (playback was complete: nothing to cut). Otherwise `audio_end_ms` is `heard_ms` clamped
        to [0, audio received] (and to an earlier truncation), so the service never answers
        "already shorter than".
        """
        limit = self._ledger.limit_ms(item_id, content_index)
        if limit is None:
            return None
        heard = max(0, int(heard_ms))
        if heard >= limit:
            return None
        return ce.ConversationItemTruncate(item_id, content_index, heard)

    @property
    def pending_call_ids(self) -> tuple[str, ...]:
        """Function calls whose arguments are still streaming."""
        return self._calls.pending_call_ids


def _output_format(obj: dict[str, Any]) -> AudioFormat | None:
    """`audio.output.format` of a session or response object, if present and valid."""
    audio = obj.get("audio")
    output = audio.get("output") if isinstance(audio, dict) else None
    fmt = output.get("format") if isinstance(output, dict) else None
    if not isinstance(fmt, dict):
        return None
    try:
        return format_from_wire(fmt)
    except AudioFormatError:
        return None
