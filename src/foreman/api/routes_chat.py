"""`/api/chat` (a text turn with the chat model) and `/api/history` (the conversations).

    POST /api/chat            {message, conversation_id?} -> {conversation_id, reply, tool_calls}
    POST /api/chat/stream     the same turn as Server-Sent Events
    GET  /api/history         conversations, newest activity first
    GET  /api/history/{id}    one conversation with its turns and their provenance

Without `conversation_id` a turn continues the owner's current conversation: the one voice
sessions are seeded from and write into. One turn at a time per conversation (409), and
none while a voice session writes into it (409: type into that session instead).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from foreman.api.openapi import errors
from foreman.chat.engine import (
    ApprovalNotice,
    Piece,
    ReplyDelta,
    ToolFinished,
    ToolNote,
    ToolStarted,
    TurnResult,
)
from foreman.chat.history import UnknownConversation
from foreman.chat.service import ChatBusy, ChatUnavailable, RunningTurn
from foreman.chat.setup import ChatServices

router = APIRouter(tags=["chat"])

ConversationId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="a conversation id"),
]


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=16000, description="what the owner typed")
    conversation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="continue this conversation (default: the owner's current one)",
    )


class ToolCallOut(BaseModel):
    call_id: str
    name: str
    arguments: Any = None
    ok: bool
    output: str


class ChatReply(BaseModel):
    conversation_id: str
    session_id: str = Field(description="the turn's id: its tool calls and approvals carry it")
    reply: str
    tool_calls: list[ToolCallOut]
    status: str = Field(description="completed")


class Conversation(BaseModel):
    id: str
    party: str = Field(description='"owner", or who the other side is ("caller:+1…")')
    title: str
    created_at: float
    updated_at: float
    turns: int
    current: bool = Field(description="the owner's current conversation")


class TurnOut(BaseModel):
    conversation_id: str
    seq: int
    kind: str = Field(
        description="typed | spoken | reply | speech | tool_call | tool_result | approval | summary"
    )
    role: str
    text: str = Field(description="for speech: what was heard (cut at a barge-in)")
    channel: str
    session_id: str
    caller: str
    at: float
    data: dict[str, Any]


class ConversationList(BaseModel):
    conversations: list[Conversation]


class ConversationDetail(BaseModel):
    conversation: Conversation
    turns: list[TurnOut]


NOT_RUNNING = "chat and the history are not running (the server is starting or stopping)"
UNKNOWN = "no conversation with that id"
TURN_ERRORS = {
    400: "chat is not configured (the message says what to set)",
    404: UNKNOWN,
    409: "a turn of that conversation runs, or a voice session writes into it",
    422: "the body is not a chat message",
    503: NOT_RUNNING,
}


def _services(request: Request) -> ChatServices:
    services: ChatServices | None = getattr(request.app.state, "chat", None)
    if services is None:
        raise HTTPException(503, NOT_RUNNING)
    return services


async def _start(request: Request, body: ChatBody) -> RunningTurn:
    try:
        return await _services(request).chat.start(body.message, body.conversation_id)
    except ChatUnavailable as exc:
        raise HTTPException(400, str(exc)) from None
    except UnknownConversation as exc:
        raise HTTPException(404, str(exc)) from None
    except ChatBusy as exc:
        raise HTTPException(409, str(exc)) from None


@router.post(
    "/api/chat",
    response_model=ChatReply,
    responses=errors(
        {
            **TURN_ERRORS,
            502: "the chat model failed (the typed turn is kept)",
            504: "the turn was stopped before it ended (server shutting down)",
        }
    ),
)
async def chat(request: Request, body: ChatBody) -> ChatReply:
    """One chat turn; answers when the reply is complete (a tool call that needs the
    owner's approval waits for it, up to `[policy] approval_timeout_s`)."""
    result = await (await _start(request, body)).result()
    if result.status == "failed":
        raise HTTPException(502, result.error or "the chat model failed")
    if result.status != "completed":
        raise HTTPException(504, "the chat turn was stopped before it ended")
    return ChatReply(
        conversation_id=result.conversation_id,
        session_id=result.session_id,
        reply=result.reply,
        tool_calls=[ToolCallOut(**c) for c in result.tool_calls],
        status=result.status,
    )


@router.post(
    "/api/chat/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-Sent Events: `start` {conversation_id, session_id}, then "
            "`delta` {text}, `tool` {call_id, name, arguments}, `note` {text}, `approval` "
            "{id, tool, call_id, state}, `tool_result` {call_id, name, ok, output}, and last "
            "`done` {conversation_id, session_id, reply, tool_calls, status, error}",
        },
        **errors(TURN_ERRORS),
    },
)
async def chat_stream(request: Request, body: ChatBody) -> StreamingResponse:
    """The same turn, streamed. If the client goes away, the turn is stopped (a pending
    approval is cancelled; what was written so far is kept)."""
    running = await _start(request, body)

    async def events() -> AsyncIterator[bytes]:
        try:
            yield _sse(
                "start",
                {"conversation_id": running.conversation_id, "session_id": running.session_id},
            )
            async for piece in running.pieces():
                yield _sse(*_wire(piece))
        finally:
            running.stop()  # a no-op once the turn has ended

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/api/history",
    response_model=ConversationList,
    responses=errors({422: "a bad limit", 503: NOT_RUNNING}),
)
async def history(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> ConversationList:
    """Conversations, newest activity first."""
    hist = _services(request).history
    records = await hist.store.newest(limit)
    current = await hist.store.latest("owner")
    return ConversationList(
        conversations=[
            Conversation(**r.to_dict(), current=current is not None and r.id == current.id)
            for r in records
        ]
    )


@router.get(
    "/api/history/{conversation_id}",
    response_model=ConversationDetail,
    responses=errors({404: UNKNOWN, 422: "a bad id, after or limit", 503: NOT_RUNNING}),
)
async def conversation(
    request: Request,
    conversation_id: ConversationId,
    after: Annotated[int, Query(ge=0, description="only turns after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> ConversationDetail:
    """One conversation and its turns, oldest first, with their provenance."""
    hist = _services(request).history
    record = await hist.store.get(conversation_id)
    if record is None:
        raise HTTPException(404, f"no conversation with id {conversation_id!r}")
    turns = await hist.store.turns(conversation_id, after=after, limit=limit)
    current = await hist.store.latest("owner")
    return ConversationDetail(
        conversation=Conversation(
            **record.to_dict(), current=current is not None and current.id == record.id
        ),
        turns=[TurnOut(**t.to_dict()) for t in turns],
    )


def _wire(piece: Piece) -> tuple[str, dict[str, Any]]:
    if isinstance(piece, ReplyDelta):
        return "delta", {"text": piece.text}
    if isinstance(piece, ToolStarted):
        return "tool", {"call_id": piece.call_id, "name": piece.name, "arguments": piece.arguments}
    if isinstance(piece, ToolNote):
        return "note", {"text": piece.text}
    if isinstance(piece, ApprovalNotice):
        body = {"id": piece.approval_id, "tool": piece.tool, "call_id": piece.call_id}
        return "approval", {**body, "state": piece.state}
    if isinstance(piece, ToolFinished):
        return "tool_result", {
            "call_id": piece.call_id,
            "name": piece.name,
            "ok": piece.ok,
            "output": piece.output,
        }
    assert isinstance(piece, TurnResult)
    return "done", {
        "conversation_id": piece.conversation_id,
        "session_id": piece.session_id,
        "reply": piece.reply,
        "tool_calls": piece.tool_calls,
        "status": piece.status,
        "error": piece.error,
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()
