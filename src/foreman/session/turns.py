"""Who is talking, decided without I/O: the assistant's replies, barge-in, text turns.

`TurnTracker` follows the backend's replies: busy from `ReplyStarted` until
`AssistantIdle`, and after a barge-in, which replies were cut off (their late audio must not
be played). `TextTurn` follows one typed turn (`say`) to its end: its own replies only (a
reply that started before the turn was asked for belongs to someone else), the tool calls it
made, and the answer owed after their results. Both are fed backend events and never await.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from foreman.backends.interface import (
    AssistantAudio,
    AssistantIdle,
    BackendEvent,
    Closed,
    ReplyEnded,
    ReplyStarted,
    TranscriptSegment,
)
from foreman.tools.request import ToolRequest

__all__ = ["TextTurn", "ToolOutputSent", "TurnTracker"]

_DISCARDED_MEMORY: Final = 64


class TurnTracker:
    """The assistant's side of the conversation, for one session."""

    __slots__ = ("_discard_order", "_discarded", "active", "busy", "late_audio_dropped", "replies")

    def __init__(self) -> None:
        self.busy = False
        self.active: set[str] = set()
        # Cut-off replies, bounded: a set to look up (per audio delta), a queue to forget.
        self._discarded: set[str] = set()
        self._discard_order: list[str] = []
        self.replies = 0
        self.late_audio_dropped = 0

    def reply_started(self, reply: str) -> None:
        self.busy = True
        self.active.add(reply)

    def reply_ended(self, reply: str) -> None:
        self.active.discard(reply)
        self.replies += 1

    def idle(self) -> None:
        self.busy = False
        self.active.clear()

    def audio_wanted(self, reply: str) -> bool:
        """False for late audio of a reply a barge-in cut off (it must not be played).
        Audio of no reply (a continuous track's silence) is played and changes nothing."""
        if not reply:
            return True
        if reply in self._discarded:
            self.late_audio_dropped += 1
            return False
        if reply not in self.active:  # audio before its ReplyStarted: the reply runs
            self.busy = True
            self.active.add(reply)
        return True

    def barge_in(self) -> list[str]:
        """The user cut the assistant off: every running reply is discarded. Returns them."""
        cut = sorted(self.active)
        for reply in cut:
            if reply not in self._discarded:
                self._discarded.add(reply)
                self._discard_order.append(reply)
        if len(self._discard_order) > _DISCARDED_MEMORY:
            forget = self._discard_order[:-_DISCARDED_MEMORY]
            del self._discard_order[:-_DISCARDED_MEMORY]
            self._discarded.difference_update(forget)
        return cut


@dataclass(frozen=True, slots=True)
class ToolOutputSent:
    """Told to a `TextTurn`: a tool call got its output (`respond`: an answer follows)."""

    call_id: str
    respond: bool


class TextTurn:
    """One typed turn. Feed it every backend event (and `ToolOutputSent`) after the turn
    was sent; it returns the pieces to stream: {"delta"}, {"tool", "call_id"},
    {"audio", "segment"} (when asked for), and finally {"done", "transcript", "status"}.

    The turn ends when a reply of its own has ended, no reply of its own runs, and no tool
    output or answer is still owed: a tool call ends one reply, a status note may start
    another, and the answer comes in the reply after the last tool result.

    `until_idle` (a continuous backend): a reply's end does not end the turn, only
    `AssistantIdle` does. There, "let me check" is a reply of its own that ends before the
    delegated work has even asked for a tool; the backend stays busy until that work is done,
    so its idle also settles an answer owed after a tool output.
    """

    def __init__(self, *, audio: bool = False, until_idle: bool = False) -> None:
        self.audio = audio
        self.until_idle = until_idle
        self.replies: set[str] = set()
        self.running: set[str] = set()
        self.pending_calls: set[str] = set()
        self.follow_up = False  # an output was sent with respond=True: an answer is owed
        self.finished: str | None = None  # status of the last reply of this turn to end
        self.parts: list[str] = []
        self.done = False

    def feed(self, event: BackendEvent | ToolOutputSent) -> list[dict[str, Any]]:
        if self.done:
            return []
        out: list[dict[str, Any]] = []
        if isinstance(event, ReplyStarted):
            self.replies.add(event.reply)
            self.running.add(event.reply)
            self.follow_up = False
        elif isinstance(event, TranscriptSegment):
            if event.role == "assistant" and not event.final and event.reply in self.replies:
                self.parts.append(event.text)
                out.append({"delta": event.text})
        elif isinstance(event, AssistantAudio):
            if self.audio and event.reply in self.replies:
                out.append({"audio": event.audio, "segment": event.segment})
        elif isinstance(event, ToolRequest):
            self.pending_calls.add(event.call_id)
            out.append({"tool": event.name, "call_id": event.call_id})
        elif isinstance(event, ToolOutputSent):
            if event.call_id in self.pending_calls:
                self.pending_calls.discard(event.call_id)
                cut_short = self.finished not in (None, "completed")
                self.follow_up = self.follow_up or (event.respond and not cut_short)
        elif isinstance(event, ReplyEnded) and event.reply in self.running:
            self.running.discard(event.reply)
            if self.until_idle:
                return out
            self.finished = event.status
            if event.status != "completed":
                # A cancelled or failed turn is over once its calls have their outputs (the
                # dispatcher still sends one per call); no answer is awaited after them.
                self.follow_up = False
        elif isinstance(event, AssistantIdle) and self.replies:
            # No reply runs: a continuous backend marks the end of a reply only this way.
            self.running.clear()
            if self.finished is None:
                self.finished = "completed"
            if self.until_idle:
                # Idle there means no delegated work is owed either: the answer after the
                # last output was given (on one continuous track it may have been part of
                # the reply that was already running when the output went).
                self.follow_up = False
        elif isinstance(event, Closed):
            self.done = True
            return [self._done("closed", event.error)]
        if self.finished and not self.running and not self.pending_calls and not self.follow_up:
            self.done = True
            out.append(self._done(self.finished))
        return out

    def _done(self, status: str, error: str | None = None) -> dict[str, Any]:
        piece: dict[str, Any] = {"done": True, "transcript": "".join(self.parts), "status": status}
        if error is not None:
            piece["error"] = error
        return piece
