"""What the console knows: the server's state as last read, and every conversation's
transcript as its events arrive. Pure: no I/O, no Textual; time is passed in.

The app feeds it answers (`set_status`, `set_calls`, `set_approvals`, `set_wake`) and events
(`apply`); `apply` answers which parts of the server's state to read again (`Refresh`):
the event stream carries what happened, not every field status shows, and an event lost
(a gap in `seq`, an `events.dropped` notice) means everything is read again.

Transcripts are keyed by conversation: `OWNER` is the owner's own (the desk voice session
and text chat), each phone call has its session id.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from foreman.client_types import (
    ApprovalPrompt,
    CallList,
    Event,
    LiveCall,
    RealtimeStatus,
    UnexpectedResponse,
    WakeStatus,
)

OWNER = "owner"
TRANSCRIPT_LIMIT = 500  # lines kept per conversation; older ones scroll away for good
ENDED_CALLS_KEPT = 20
DECIDED_KEPT = 1000


class Refresh(enum.Flag):
    """Parts of the server's state to read again."""

    NONE = 0
    STATUS = enum.auto()
    CALLS = enum.auto()
    APPROVALS = enum.auto()
    WAKE = enum.auto()
    ALL = STATUS | CALLS | APPROVALS | WAKE


def _same(a: str, b: str) -> bool:
    return a.split() == b.split()


@dataclass
class Line:
    """One line of a transcript. `role`: user, assistant, tool or note."""

    role: str
    text: str
    streaming: bool = False  # an assistant reply still arriving
    cut_ms: int | None = None  # a barge-in cut the assistant off here
    call_id: str = ""  # tool lines: the call they show
    status: str = ""  # tool lines: running, waiting for approval, approved, denied: …, done
    typed: bool = False  # user lines the owner typed here
    final: bool = False  # the server's whole utterance has replaced what streamed


class Transcript:
    """Lines of one conversation. Replies streamed to this console (a typed turn) and the
    whole utterances the event stream publishes for them are the same words: the second is
    matched to the first instead of being shown twice."""

    def __init__(self, limit: int = TRANSCRIPT_LIMIT) -> None:
        self.lines: list[Line] = []
        self.version = 0  # grows with every change: views redraw only when it moved
        self._limit = limit
        self._open: Line | None = None  # the assistant line deltas go to
        self._unmatched: list[Line] = []  # streamed here; the server's utterance not seen yet
        self._pending_cut: int | None = None  # a barge-in before the utterance it cut

    def _add(self, line: Line) -> Line:
        self.lines.append(line)
        if len(self.lines) > self._limit:
            del self.lines[: len(self.lines) - self._limit]
        self.version += 1
        return line

    def _changed(self) -> None:
        self.version += 1

    # --- the owner's typed turns, streamed back ------------------------------------------------
    def typed(self, text: str) -> None:
        self._add(Line("user", text, typed=True))

    def delta(self, text: str) -> None:
        line = self._open
        if line is None:
            line = self._open = self._add(Line("assistant", "", streaming=True))
            self._unmatched.append(line)
        if not line.final:
            line.text += text
        self._changed()

    def close_reply(self) -> None:
        """The streamed reply stopped (a tool call, or the turn is done)."""
        line, self._open = self._open, None
        if line is not None:
            line.streaming = False
            if not line.text and not line.final:  # nothing was said: no empty line
                self.lines.remove(line)
                self._unmatched.remove(line)
            self._changed()

    # --- what the event stream says -----------------------------------------------------------
    def said(self, role: str, text: str, heard_ms: int | None = None) -> None:
        """A whole utterance. For the assistant, `heard_ms` is where a barge-in cut it."""
        if role == "assistant":
            cut = heard_ms if heard_ms is not None else self._pending_cut
            self._pending_cut = None
            for line in self._unmatched:
                if _same(line.text, text) or (line.streaming and text.startswith(line.text)):
                    self._unmatched.remove(line)
                    line.text, line.final, line.cut_ms = text, True, cut
                    self._changed()
                    return
            self._add(Line("assistant", text, cut_ms=cut, final=True))
            return
        last_user = next((li for li in reversed(self.lines[-6:]) if li.role == "user"), None)
        if last_user is not None and last_user.typed and not last_user.final:
            last_user.final = True  # the server's copy of what was typed here: shown once
            if _same(last_user.text, text):
                return
        self._add(Line("user", text, final=True))

    def barge_in(self, heard_ms: int) -> None:
        """The user talked over the assistant: mark the reply being said, or the next
        assistant utterance (it is published when the cut reply ends)."""
        line = self._open
        if line is not None:
            line.cut_ms = heard_ms
            self._changed()
        else:
            self._pending_cut = heard_ms

    def tool(self, call_id: str, name: str) -> None:
        if call_id and any(li.call_id == call_id for li in self.lines if li.role == "tool"):
            return
        self.close_reply()
        self._add(Line("tool", name, call_id=call_id, status="requested"))

    def tool_status(self, status: str, *, call_id: str = "", name: str = "") -> None:
        """Set the status of the tool line for `call_id` (or the newest one for `name`
        that waits for an approval)."""
        for line in reversed(self.lines):
            if line.role != "tool":
                continue
            if (call_id and line.call_id == call_id) or (
                not call_id and line.text == name and line.status == "waiting for approval"
            ):
                line.status = status
                self._changed()
                return

    def note(self, text: str) -> None:
        self._add(Line("note", text))


@dataclass
class Conversation:
    key: str
    channel: str  # owner, phone
    title: str
    live: bool = True
    session_id: str | None = None
    call_sid: str = ""
    caller: str = ""  # the number
    caller_name: str | None = None
    direction: str = ""
    transcript: Transcript = field(default_factory=Transcript)
    changed_at: int = 0  # `ConsoleState.call_events` when an event last set `live`


@dataclass
class PendingApproval:
    prompt: ApprovalPrompt
    deadline: float  # on the console's monotonic clock

    def remaining(self, now: float) -> float:
        return max(0.0, self.deadline - now)


_DECISIONS = {"allow": "running", "needsapproval": "waiting for approval"}
_NOT_RUN = ("deny", "denied", "expired", "cancelled", "invalid")


class ConsoleState:
    """The state of one console against one server."""

    def __init__(self) -> None:
        self.connected = False
        self.error: str | None = None  # why the server does not answer
        self.status: RealtimeStatus | None = None
        self.calls: tuple[LiveCall, ...] = ()
        self.wake: WakeStatus | None = None
        self.wake_missing = False  # the server has no wake sentinel (404)
        self.chat_missing = False  # the server has no text chat (404)
        self.backend = ""  # the desk session's backend, from its session.started
        self.approvals: dict[str, PendingApproval] = {}  # oldest first
        self.conversations: dict[str, Conversation] = {
            OWNER: Conversation(OWNER, "owner", "Desk", live=False)
        }
        self.last_seq: int | None = None
        self._owner_sessions: set[str] = set()  # the owner's sessions: desk voice, chat
        self.approval_events = 0  # approval events taken in so far
        self.call_events = 0  # phone session starts and ends taken in so far
        self._prompted_at: dict[str, int] = {}  # pending id -> approval_events when it came
        self._decided: dict[str, None] = {}  # ids decided lately (insertion-ordered set)

    # --- conversations ---------------------------------------------------------------------
    @property
    def owner(self) -> Conversation:
        return self.conversations[OWNER]

    def key_for(self, session_id: str) -> str:
        if session_id in self._owner_sessions or session_id.startswith("desk-"):
            return OWNER
        return session_id

    def _owned(self, session_id: str) -> None:
        self.owner.session_id = session_id
        self._owner_sessions.add(session_id)

    def conversation(self, session_id: str) -> Conversation:
        """The conversation of a session, made when first seen (a session that started
        while this console was away)."""
        key = self.key_for(session_id)
        conv = self.conversations.get(key)
        if conv is None:
            conv = self.conversations[key] = Conversation(key, "phone", session_id)
            conv.session_id = session_id
            self._forget_old_calls()
        return conv

    def transcript(self, key: str) -> Transcript:
        return self.conversations[key].transcript

    def live_calls(self) -> Iterator[Conversation]:
        return (c for c in self.conversations.values() if c.channel == "phone" and c.live)

    def _forget_old_calls(self) -> None:
        ended = [k for k, c in self.conversations.items() if c.channel == "phone" and not c.live]
        for key in ended[: max(0, len(ended) - ENDED_CALLS_KEPT)]:
            del self.conversations[key]

    # --- connection --------------------------------------------------------------------------
    def opened(self) -> None:
        """The event stream is subscribed: state is read next, and seq starts afresh."""
        self.connected, self.error, self.last_seq = True, None, None

    def lost(self, error: str) -> None:
        was = self.connected
        self.connected, self.error = False, error
        if was:
            for conv in self.conversations.values():
                if conv.live or conv.key == OWNER:
                    conv.transcript.close_reply()
                    conv.transcript.note("connection lost: what is said meanwhile is missing")

    # --- answers ---------------------------------------------------------------------------
    def set_status(self, status: RealtimeStatus) -> None:
        self.status = status
        if status.active and status.session_id:
            self._owned(status.session_id)
        self.owner.live = status.active

    def set_calls(self, calls: CallList, asked_at: int | None = None) -> None:
        """The live calls the server listed. `asked_at` is `call_events` when the list was
        asked for: a call that started or ended by event since then keeps what the event
        said (the list was read before it, so it is older news)."""
        self.calls = calls.active
        live = set()
        for call in calls.active:
            session_id = call.session_id or f"call-{call.call_sid}"
            conv = self.conversation(session_id)
            live.add(conv.key)
            if self._changed_since(conv, asked_at):
                continue
            conv.live, conv.call_sid, conv.direction = True, call.call_sid, call.direction
            conv.caller = call.to if call.direction == "outbound" else call.from_
            conv.caller_name = call.caller_name
            conv.title = call.caller_name or conv.caller or call.call_sid
        for conv in self.conversations.values():
            stale = self._changed_since(conv, asked_at)
            if conv.channel == "phone" and conv.key not in live and not stale:
                conv.live = False

    def _changed_since(self, conv: Conversation, asked_at: int | None) -> bool:
        return asked_at is not None and conv.changed_at > asked_at

    def _call_changed(self, conv: Conversation, live: bool) -> None:
        self.call_events += 1
        conv.live, conv.changed_at = live, self.call_events

    def set_approvals(
        self, prompts: Iterable[ApprovalPrompt], now: float, asked_at: int | None = None
    ) -> None:
        """The prompts the server listed. `asked_at` is `approval_events` when the list was
        asked for: a prompt that arrived by event since then stays even if the list (read
        before it) lacks it, and a prompt decided by event never comes back."""
        fresh = {p.id: p for p in prompts if p.state == "pending" and p.id not in self._decided}
        kept: dict[str, PendingApproval] = {}
        for pid, pending in self.approvals.items():
            arrived_since = asked_at is not None and self._prompted_at.get(pid, 0) > asked_at
            if pid in fresh or arrived_since:
                kept[pid] = pending
        for pid, prompt in fresh.items():
            if pid not in kept:
                kept[pid] = PendingApproval(prompt, now + prompt.expires_in_s)
        self.approvals = dict(sorted(kept.items(), key=lambda kv: kv[1].prompt.created_at))

    def answered(self, prompt: ApprovalPrompt) -> None:
        """This console's answer was taken (or the prompt was no longer pending)."""
        self._approval_decided(prompt.raw or {"id": prompt.id, "tool": prompt.tool}, 0.0)

    def set_wake(self, wake: WakeStatus | None) -> None:
        """None: the server has no wake sentinel."""
        self.wake, self.wake_missing = wake, wake is None

    # --- events --------------------------------------------------------------------------------
    def apply(self, event: Event, now: float) -> Refresh:
        """Take one event in; answer what to read again."""
        refresh = Refresh.NONE
        if event.kind == "events.dropped":
            self.last_seq = None
            return Refresh.ALL
        if event.seq > 0:
            if self.last_seq is not None and event.seq != self.last_seq + 1:
                refresh = Refresh.ALL  # events were lost between these two
            self.last_seq = event.seq
        handler = _HANDLERS.get(event.kind)
        if handler is None:
            family = event.kind.partition(".")[0]
            return refresh | _FAMILIES.get(family, Refresh.NONE)
        try:
            return refresh | handler(self, event.data, now)
        except (KeyError, TypeError, ValueError, UnexpectedResponse):
            return refresh | Refresh.ALL  # a shape this console cannot read: ask instead

    def _session_started(self, data: Mapping[str, Any], now: float) -> Refresh:
        session_id = str(data["session_id"])
        channel = str(data.get("channel", ""))
        if channel == "phone":
            conv = self.conversation(session_id)
            self._call_changed(conv, live=True)
            conv.call_sid = str(data.get("call_sid", ""))
            conv.direction = str(data.get("direction", ""))
            conv.caller = str(data.get(("to" if conv.direction == "outbound" else "from"), ""))
            conv.title = str(data.get("caller") or conv.caller or session_id)
            conv.transcript.note(f"call {_arrow(conv.direction)} {conv.title} started")
            return Refresh.CALLS
        self._owned(session_id)
        if channel == "chat":
            return Refresh.NONE
        self.owner.live = True
        self.backend = str(data.get("backend", ""))
        self.owner.transcript.note(f"voice session started ({data.get('model') or 'model'})")
        return Refresh.STATUS

    def _end(self, conv: Conversation) -> None:
        if conv.channel == "phone":
            self._call_changed(conv, live=False)
        else:
            conv.live = False

    def _session_ended(self, data: Mapping[str, Any], now: float) -> Refresh:
        conv = self.conversation(str(data["session_id"]))
        conv.transcript.close_reply()
        what = "voice session" if conv.key == OWNER else "call"
        reason = data.get("error") or data.get("reason") or "ended"
        conv.transcript.note(f"{what} ended: {reason}")
        self._end(conv)
        return Refresh.STATUS if conv.key == OWNER else Refresh.CALLS

    def _session_failed(self, data: Mapping[str, Any], now: float) -> Refresh:
        conv = self.conversation(str(data["session_id"]))
        conv.transcript.note(f"could not start: {data.get('error', 'unknown error')}")
        self._end(conv)
        return Refresh.STATUS if conv.key == OWNER else Refresh.CALLS

    def _transcript(self, data: Mapping[str, Any], now: float) -> Refresh:
        heard = data.get("heard_ms")
        self.conversation(str(data["session_id"])).transcript.said(
            str(data["role"]), str(data["text"]), int(heard) if heard is not None else None
        )
        return Refresh.NONE

    def _barge_in(self, data: Mapping[str, Any], now: float) -> Refresh:
        self.conversation(str(data["session_id"])).transcript.barge_in(int(data["heard_ms"]))
        return Refresh.NONE

    def _tool_request(self, data: Mapping[str, Any], now: float) -> Refresh:
        transcript = self.conversation(str(data["session_id"])).transcript
        transcript.tool(str(data["call_id"]), str(data["name"]))
        return Refresh.NONE

    def _tool_decided(self, data: Mapping[str, Any], now: float) -> Refresh:
        decision = str(data["decision"])
        status = _DECISIONS.get(decision) or f"{decision}: {data.get('reason', '')}".rstrip(": ")
        transcript = self.conversation(str(data["session_id"])).transcript
        transcript.tool_status(status, call_id=str(data["call_id"]))
        return Refresh.NONE

    def _tool_result(self, data: Mapping[str, Any], now: float) -> Refresh:
        transcript = self.conversation(str(data["session_id"])).transcript
        call_id = str(data["call_id"])
        line = next((li for li in transcript.lines if li.call_id == call_id), None)
        if line is not None and not line.status.startswith(_NOT_RUN):  # a refusal stays
            outcome = "done" if data.get("ok") else "failed"
            if line.status.startswith("approved"):
                outcome += f" ({line.status})"
            transcript.tool_status(outcome, call_id=call_id)
        return Refresh.NONE

    def _approval_prompt(self, data: Mapping[str, Any], now: float) -> Refresh:
        prompt = ApprovalPrompt.from_json(data)
        self.approval_events += 1
        if prompt.state == "pending" and prompt.id not in self._decided:
            self._prompted_at[prompt.id] = self.approval_events
            self.approvals.setdefault(prompt.id, PendingApproval(prompt, now + prompt.expires_in_s))
        return Refresh.NONE

    def _approval_decided(self, data: Mapping[str, Any], now: float) -> Refresh:
        prompt = ApprovalPrompt.from_json(data)
        self.approval_events += 1
        if prompt.id in self._decided:
            return Refresh.NONE
        self._decided[prompt.id] = None
        while len(self._decided) > DECIDED_KEPT:
            del self._decided[next(iter(self._decided))]
        self._prompted_at.pop(prompt.id, None)
        self.approvals.pop(prompt.id, None)
        if prompt.session_id:
            by = f" by {prompt.approver}" if prompt.approver else ""
            self.conversation(prompt.session_id).transcript.tool_status(
                f"{prompt.state}{by}", name=prompt.tool
            )
        return Refresh.NONE

    def _mode(self, data: Mapping[str, Any], now: float) -> Refresh:
        if self.status is not None:
            self.status = RealtimeStatus.from_json({**self.status.raw, "mode": data["mode"]})
        return Refresh.STATUS


def _arrow(direction: str) -> str:
    return "to" if direction == "outbound" else "from"


_HANDLERS = {
    "session.started": ConsoleState._session_started,
    "session.ended": ConsoleState._session_ended,
    "session.failed": ConsoleState._session_failed,
    "session.transcript": ConsoleState._transcript,
    "session.barge_in": ConsoleState._barge_in,
    "session.tool_request": ConsoleState._tool_request,
    "tool.call": ConsoleState._tool_decided,
    "tool.result": ConsoleState._tool_result,
    "approval.prompt": ConsoleState._approval_prompt,
    "approval.decided": ConsoleState._approval_decided,
    "mode": ConsoleState._mode,
}
_FAMILIES = {"call": Refresh.CALLS, "wake": Refresh.WAKE, "chat": Refresh.NONE}
