"""The records of text chat and the shared history, as the server answers them (`POST
/api/chat`, `/api/chat/stream` pieces, `/api/history`): a part of the typed client."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from foreman.client_types import Record, UnexpectedResponse, one_line


@dataclass(frozen=True)
class ChatToolCall(Record):
    """A tool the chat model called during a turn, with its one output."""

    call_id: str
    name: str
    arguments: Any = None
    ok: bool = False
    output: str = ""


@dataclass(frozen=True)
class ChatReply(Record):
    """A finished chat turn (`POST /api/chat`)."""

    conversation_id: str
    reply: str
    session_id: str = ""  # the turn's id: its tool calls, approvals and audit rows carry it
    tool_calls: tuple[ChatToolCall, ...] = ()
    status: str = "completed"


@dataclass(frozen=True)
class Conversation(Record):
    """One conversation of the history (times are unix seconds)."""

    id: str
    title: str = ""
    party: str = ""  # "owner", or who the other side is ("caller:+1…")
    created_at: float = 0.0
    updated_at: float = 0.0
    turns: int = 0
    current: bool = False  # the owner's current conversation (chat and voice continue it)


@dataclass(frozen=True)
class HistoryTurn(Record):
    """One turn with its provenance: `kind` typed | spoken | reply | speech (as heard) |
    tool_call | tool_result | approval | summary; `channel` chat | phone | local_voice."""

    seq: int
    kind: str
    text: str = ""
    role: str = ""
    channel: str = ""
    session_id: str = ""
    caller: str = ""
    at: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)
    conversation_id: str = ""


@dataclass(frozen=True)
class ConversationDetail(Record):
    conversation: Conversation
    turns: tuple[HistoryTurn, ...] = ()


@dataclass(frozen=True)
class ChatPiece(Record):
    """One event of a streamed chat turn. `EVENT` is its Server-Sent Events name; events of
    names this client does not know are skipped."""

    EVENT: ClassVar[str]


@dataclass(frozen=True)
class ChatStart(ChatPiece):
    EVENT = "start"
    conversation_id: str
    session_id: str = ""


@dataclass(frozen=True)
class ChatDelta(ChatPiece):
    """A piece of the reply's text."""

    EVENT = "delta"
    text: str


@dataclass(frozen=True)
class ChatToolStarted(ChatPiece):
    EVENT = "tool"
    call_id: str
    name: str
    arguments: Any = None


@dataclass(frozen=True)
class ChatNote(ChatPiece):
    """What the model was told about a running call ("waiting for approval, NOT done")."""

    EVENT = "note"
    text: str


@dataclass(frozen=True)
class ChatApproval(ChatPiece):
    """An approval prompt of this turn opened (`state` pending) or was answered."""

    EVENT = "approval"
    id: str
    tool: str
    state: str
    call_id: str = ""


@dataclass(frozen=True)
class ChatToolResult(ChatPiece):
    EVENT = "tool_result"
    call_id: str
    name: str = ""
    ok: bool = False
    output: str = ""


@dataclass(frozen=True)
class ChatDone(ChatPiece):
    """The turn is over: `status` completed, stopped or failed (`error` says why)."""

    EVENT = "done"
    conversation_id: str
    reply: str = ""
    session_id: str = ""
    tool_calls: tuple[ChatToolCall, ...] = ()
    status: str = "completed"
    error: str | None = None

    @property
    def completed(self) -> bool:
        return self.status == "completed"


CHAT_PIECES: tuple[type[ChatPiece], ...] = (
    ChatStart,
    ChatDelta,
    ChatToolStarted,
    ChatNote,
    ChatApproval,
    ChatToolResult,
    ChatDone,
)


def read_chat_piece(event: str, data: str) -> ChatPiece | None:
    """The piece one Server-Sent Event carries; None for a kind not known here."""
    for kind in CHAT_PIECES:
        if event == kind.EVENT:
            try:
                body = json.loads(data)
            except ValueError:
                raise UnexpectedResponse(f"chat: not JSON: {one_line(data, 60)}") from None
            return kind.from_json(body)
    return None
