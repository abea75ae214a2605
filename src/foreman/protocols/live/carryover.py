"""What a GPT-Live conversation carries to a new session, sans I/O.

A new Live socket is a new session: nothing is restored server-side. So the client keeps
what the conversation was and seeds the next session with it (`session.start`'s `input`,
the same field that seeds history at the start of a call):

* `ConversationDigest` records the conversation as the client saw it: the seed history,
  what the user said (transcript pieces, grouped into one message until the assistant
  speaks), what the assistant said, typed turns, notes the model was given, and delegated
  tool calls with their outputs. `seed()` gives the newest messages for the next session;
  `since(seq)` what was said after a seed was taken (a rollover's standby session was
  opened a while before it took over, and is told the rest as a silent fact).
* `CarriedCalls`: delegated function calls still waiting for their output (an approval
  outstanding) when their session was lost. The new session's Responses backend never saw
  them, so it cannot take a `function_call_output` for them; each is answered once, as a
  note on the new session, when the tool flow delivers its output.
* `resume_instruction` words what the new session is asked to do first.

Reference: https://developers.openai.com/api/docs/guides/live (a session is not resumable;
`session.start` takes `instructions` and `input`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "CarriedCall",
    "CarriedCalls",
    "ConversationDigest",
    "result_note",
    "resume_instruction",
]

Role = Literal["user", "assistant", "system"]
MAX_MESSAGE_CHARS: Final = 1200  # one message of the seed; the newest words are kept
SINCE_MAX_CHARS: Final = 1900  # what a standby session is told it missed (one append)


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    role: Role
    text: str


class ConversationDigest:
    """The conversation so far, bounded to `max_items` messages (oldest dropped)."""

    __slots__ = ("_items", "_open_role", "_open_text", "_seq", "max_items")

    def __init__(self, max_items: int, history: tuple[tuple[str, str], ...] = ()) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self.max_items = max_items
        self._items: deque[_Entry] = deque(maxlen=max_items)
        self._seq = 0
        self._open_role: Role | None = None  # a message still being spoken, in pieces
        self._open_text = ""
        for role, text in history:
            self._add(_role(role), text)

    @property
    def last_seq(self) -> int:
        """Grows with every change (a piece added to a message being spoken counts)."""
        return self._seq + (1 if self._open_role is not None else 0)

    def _add(self, role: Role, text: str) -> None:
        text = text.strip()
        if text:
            self._seq += 1
            self._items.append(_Entry(self._seq, role, text))

    def _close_open(self) -> None:
        if self._open_role is not None:
            role, text = self._open_role, self._open_text
            self._open_role, self._open_text = None, ""
            self._add(role, text)

    def _piece(self, role: Role, text: str) -> None:
        if self._open_role is not None and self._open_role != role:
            self._close_open()
        self._open_role = role
        self._open_text = _tail(self._open_text + text, 4 * MAX_MESSAGE_CHARS)  # bounded

    # --- what happened ---------------------------------------------------------------------
    def user_piece(self, text: str) -> None:
        """A piece of the user's transcript (Live sends pieces, never a final)."""
        self._piece("user", text)

    def assistant_piece(self, text: str) -> None:
        self._piece("assistant", text)

    def reply_ended(self) -> None:
        """The assistant stopped talking: what it said so far is one message."""
        if self._open_role == "assistant":
            self._close_open()

    def typed(self, text: str) -> None:
        self._close_open()
        self._add("user", text)

    def note(self, text: str) -> None:
        """Something the model was told (an instruction, a status, a silent fact)."""
        self._close_open()
        self._add("system", text)

    def tool_call(self, name: str, arguments: str) -> None:
        self._close_open()
        self._add("system", f"You delegated a task: {name}({arguments}).")

    def tool_output(self, name: str, output: str) -> None:
        self._close_open()
        self._add("system", f"The task {name} returned: {output}")

    # --- for a new session -----------------------------------------------------------------
    def seed(self) -> tuple[tuple[Role, str], ...]:
        """Every message kept, oldest first (each cut to its newest words), the one still
        being spoken included."""
        out = [(e.role, _tail(e.text, MAX_MESSAGE_CHARS)) for e in self._items]
        if self._open_role is not None and self._open_text.strip():
            out.append((self._open_role, _tail(self._open_text.strip(), MAX_MESSAGE_CHARS)))
        return tuple(out[-self.max_items :])

    def since(self, seq: int) -> str:
        """What was said after `last_seq` was `seq`, as one line per message (newest kept
        when long); "" when nothing was."""
        lines = [f"{e.role}: {e.text}" for e in self._items if e.seq > seq]
        if self._open_role is not None and self._open_text.strip() and self.last_seq > seq:
            lines.append(f"{self._open_role}: {self._open_text.strip()}")
        if not lines:
            return ""
        return _tail("\n".join(lines), SINCE_MAX_CHARS)


@dataclass(frozen=True, slots=True)
class CarriedCall:
    call_id: str
    name: str
    arguments: str


class CarriedCalls:
    """Calls owed an output from a lost session. `take` hands each out once."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[str, CarriedCall] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def carry(self, calls: list[CarriedCall]) -> None:
        for call in calls:
            self._calls.setdefault(call.call_id, call)

    def take(self, call_id: str) -> CarriedCall | None:
        return self._calls.pop(call_id, None)

    def names(self) -> list[str]:
        return [c.name for c in self._calls.values()]


def result_note(call: CarriedCall, output: str) -> str:
    """The output of a carried call, as the note the new session gets."""
    return (
        f"The task {call.name} you delegated before the line dropped has finished. "
        f"Its result: {output}"
    )


def resume_instruction(*, cut_reply: bool, lost_speech: bool, waiting: list[str]) -> str | None:
    """What the new session is asked to do first after a lost connection (None: nothing,
    carry on listening). `cut_reply`: the drop cut the assistant short; `lost_speech`: the
    user spoke while the line was down (those words did not reach the model); `waiting`:
    tools of carried calls still waiting for their result."""
    parts: list[str] = []
    if lost_speech:
        parts.append(
            "The line dropped for a moment and the user's last words were lost. Say in a "
            "few words that the line dropped, and ask them to repeat what they just said."
        )
    elif cut_reply:
        parts.append(
            "The line dropped for a moment while you were speaking; the conversation shows "
            "what you had said. Continue from there in a few words, without repeating it."
        )
    if waiting:
        parts.append(
            f"Still waiting for: {', '.join(waiting)}. The result will be given to you when "
            "it comes; do not start that task again."
        )
    return " ".join(parts) or None


def _role(role: str) -> Role:
    return role if role in ("user", "assistant") else "system"  # type: ignore[return-value]


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
