"""Conversations and their turns: one history for chat and voice, with provenance.

A conversation is an ordered list of turns. Every turn says what it is (`kind`), where it
came from (`channel`, `session_id`, `caller`) and when (`at`, unix time); `data` holds the
details of its kind. The owner has one current conversation (the one with the newest
activity among the owner's); chat continues it, and voice sessions of the owner are seeded
from it and write into it. Anyone else who calls gets a conversation of their own.

Turn kinds and what they hold:

    typed        the user typed `text`
    spoken       the user said `text` (a transcript)
    reply        the assistant wrote `text` (chat)
    speech       the assistant said `text` *as heard*: after a barge-in, `text` stops where
                 the user stopped hearing it; `data` has `cut`, `heard_ms`, `audio_ms` and
                 `full_text` (what the model produced)
    tool_call    the model asked for a tool: `data` has `call_id`, `name`, `arguments`
    tool_result  the tool's one output (`text`): `data` has `call_id`, `name`, `ok`
    approval     an approval prompt opened or was answered: `data` has `approval_id`,
                 `tool`, `call_id`, `state`, `approver`, `note`
    summary      what a voice session said and did, appended when it ended: `data` has
                 `session_id`, `source` (model | digest) and `reason`
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from foreman.stores.records import dumps, json_copy

TurnKind = Literal[
    "typed", "spoken", "reply", "speech", "tool_call", "tool_result", "approval", "summary"
]
TURN_KINDS: tuple[str, ...] = get_args(TurnKind)
Role = Literal["user", "assistant", "tool", "system"]
OWNER_PARTY = "owner"

_ROLES: dict[str, Role] = {
    "typed": "user",
    "spoken": "user",
    "reply": "assistant",
    "speech": "assistant",
    "tool_call": "assistant",
    "tool_result": "tool",
    "approval": "tool",
    "summary": "system",
}
TITLE_CHARS = 80


def role_of(kind: str) -> Role:
    """Who a turn of `kind` belongs to: user, assistant, tool or system."""
    return _ROLES[kind]


@dataclass(frozen=True)
class ConversationRecord:
    """One conversation. `party` is `OWNER_PARTY` for the owner's conversations, else who
    the other side is (e.g. `caller:+14155550100`). `title` is the first thing the user
    said or typed (cut to 80 characters); `turns` counts the turns stored."""

    id: str
    party: str
    created_at: float
    updated_at: float
    title: str = ""
    turns: int = 0

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a conversation needs an id")
        if not self.party:
            raise ValueError("a conversation needs a party")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "party": self.party,
            "title": self.title,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "turns": self.turns,
        }


@dataclass(frozen=True)
class Turn:
    """One turn. `seq` is 0 until the store assigned it (1, 2, … per conversation)."""

    kind: TurnKind
    text: str
    channel: str  # chat | phone | local_voice
    session_id: str
    at: float
    caller: str = ""
    data: dict[str, Any] = field(default_factory=dict, hash=False)
    conversation_id: str = ""
    seq: int = 0

    def __post_init__(self) -> None:
        if self.kind not in TURN_KINDS:
            raise ValueError(f"turn kind must be one of {', '.join(TURN_KINDS)}")
        try:
            dumps(self.data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"turn data must be JSON: {exc}") from None

    @property
    def role(self) -> Role:
        return role_of(self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "kind": self.kind,
            "role": self.role,
            "text": self.text,
            "channel": self.channel,
            "session_id": self.session_id,
            "caller": self.caller,
            "at": self.at,
            "data": dict(self.data),
        }


def title_from(turn: Turn) -> str:
    """The title a conversation takes from its first user turn ("" for other turns)."""
    if turn.role != "user":
        return ""
    flat = " ".join(turn.text.split())
    return flat if len(flat) <= TITLE_CHARS else flat[: TITLE_CHARS - 1] + "…"


@runtime_checkable
class ConversationStore(Protocol):
    """Conversations and their turns. The embedded default is SQLite (the file the audit
    log uses); a PostgreSQL store implements the same methods.

    * `append` is durable when it returns: a crash afterwards never loses the turn. Turns
      of one conversation get `seq` 1, 2, … in the order their appends ran; concurrent
      appends to one conversation never share a number.
    * A conversation's `updated_at` is the newest `at` of its turns (or its creation).
    * Turns are never changed or deleted here.
    """

    async def create(self, record: ConversationRecord) -> None:
        """Store a new conversation (no turns yet). ValueError when the id exists."""
        ...

    async def get(self, conversation_id: str) -> ConversationRecord | None: ...

    async def latest(self, party: str) -> ConversationRecord | None:
        """The party's conversation with the newest activity (`updated_at`, then id)."""
        ...

    async def newest(self, limit: int = 50) -> list[ConversationRecord]:
        """Conversations, newest activity first."""
        ...

    async def append(self, conversation_id: str, turn: Turn) -> Turn:
        """Store `turn` at the end of the conversation; returns it with `seq` and
        `conversation_id` set. KeyError when the conversation does not exist."""
        ...

    async def turns(
        self, conversation_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[Turn]:
        """Turns with `seq > after`, oldest first, at most `limit` of them."""
        ...

    async def last_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        """The newest `limit` turns, returned oldest first."""
        ...

    async def session_turns(self, session_id: str) -> list[Turn]:
        """Every turn one session wrote (in any conversation), oldest first."""
        ...

    async def aclose(self) -> None: ...


class MemoryConversationStore:
    """`ConversationStore` that forgets everything with the process (tests, throwaway runs).
    Data is kept as JSON copies, like the SQLite store returns it."""

    def __init__(self) -> None:
        self._conversations: dict[str, ConversationRecord] = {}
        self._turns: dict[str, list[Turn]] = {}

    async def create(self, record: ConversationRecord) -> None:
        if record.id in self._conversations:
            raise ValueError(f"conversation {record.id} exists")
        self._conversations[record.id] = replace(record, turns=0)
        self._turns[record.id] = []

    async def get(self, conversation_id: str) -> ConversationRecord | None:
        return self._conversations.get(conversation_id)

    async def latest(self, party: str) -> ConversationRecord | None:
        mine = [c for c in self._conversations.values() if c.party == party]
        return max(mine, key=_activity, default=None)

    async def newest(self, limit: int = 50) -> list[ConversationRecord]:
        ordered = sorted(self._conversations.values(), key=_activity, reverse=True)
        return ordered[: max(0, int(limit))]

    async def append(self, conversation_id: str, turn: Turn) -> Turn:
        record = self._conversations.get(conversation_id)
        if record is None:
            raise KeyError(conversation_id)
        turns = self._turns[conversation_id]
        stored = replace(
            turn, conversation_id=conversation_id, seq=len(turns) + 1, data=json_copy(turn.data)
        )
        turns.append(stored)
        self._conversations[conversation_id] = replace(
            record,
            turns=len(turns),
            updated_at=max(record.updated_at, turn.at),
            title=record.title or title_from(turn),
        )
        return stored

    async def turns(
        self, conversation_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[Turn]:
        turns = self._turns.get(conversation_id, [])
        start = bisect.bisect_right([t.seq for t in turns], after)
        picked = turns[start:]
        return picked if limit is None else picked[: max(0, int(limit))]

    async def last_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        limit = max(0, int(limit))
        return self._turns.get(conversation_id, [])[-limit:] if limit else []

    async def session_turns(self, session_id: str) -> list[Turn]:
        found = [t for ts in self._turns.values() for t in ts if t.session_id == session_id]
        return sorted(found, key=lambda t: (t.at, t.conversation_id, t.seq))

    async def aclose(self) -> None:
        return None


def _activity(record: ConversationRecord) -> tuple[float, str]:
    return (record.updated_at, record.id)
