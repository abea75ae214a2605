"""The chat service the API talks to: one turn at a time per conversation, each turn a task
of its own whose pieces a client may stream, events on the bus, and a clean shutdown.

A conversation that a voice session is writing into takes no chat turn meanwhile (that
session is where the owner talks now; its typed turns go to it), so the two never answer
at once in one history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Final

from foreman.bus import EventBus
from foreman.chat.engine import (
    ApprovalNotice,
    ChatEngine,
    ChatTurn,
    Piece,
    TurnResult,
)
from foreman.chat.history import ConversationHistory
from foreman.events import ChatEnded, ChatStarted
from foreman.exceptions import ForemanError
from foreman.policy.approvals import Approval
from foreman.policy.context import CallContext, Channel, Role

log = logging.getLogger(__name__)

STOP_WAIT_S: Final = 5.0


class ChatUnavailable(ForemanError):
    """Chat cannot work as configured (HTTP 400, as a voice start without a key); the
    message says what to set."""


class ChatBusy(ForemanError):
    """The conversation is already answering (HTTP 409)."""


class RunningTurn:
    """A chat turn in flight. Read `pieces()` (ends with the `TurnResult`), or await
    `result()`; `stop()` ends it early (its reader went away)."""

    def __init__(self, turn: ChatTurn) -> None:
        self.turn = turn
        self.session_id = turn.ctx.session_id
        self.conversation_id = turn.conversation.id
        self.task: asyncio.Task[TurnResult] | None = None
        self._pieces: asyncio.Queue[Piece] = asyncio.Queue()

    def emit(self, piece: Piece) -> None:
        self._pieces.put_nowait(piece)

    async def pieces(self) -> AsyncIterator[Piece]:
        while True:
            piece = await self._pieces.get()
            yield piece
            if isinstance(piece, TurnResult):
                return

    async def result(self) -> TurnResult:
        """The turn's result; a turn stopped by `stop()` (or at shutdown) says "stopped"."""
        assert self.task is not None
        try:
            return await asyncio.shield(self.task)
        except asyncio.CancelledError:
            if not self.task.cancelled():
                raise  # our own caller is being cancelled
            return self.stopped()

    def stopped(self) -> TurnResult:
        turn = self.turn
        return TurnResult(
            self.conversation_id, self.session_id, turn.reply, turn.tool_calls, "stopped"
        )

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


class ChatService:
    def __init__(
        self,
        engine: ChatEngine | None,
        history: ConversationHistory,
        bus: EventBus,
        *,
        refusal: str | None = None,
        owner_name: str = "",
    ) -> None:
        """`engine` None (with the `refusal` saying why): chat is refused (400)."""
        self.engine = engine
        self.history = history
        self.bus = bus
        self.refusal = refusal if engine is None else None
        self.owner_name = owner_name
        self._running: dict[str, RunningTurn] = {}  # by conversation id
        self._sessions: dict[str, RunningTurn] = {}  # by the turn's session id

    @property
    def available(self) -> bool:
        return self.engine is not None

    async def start(self, message: str, conversation_id: str | None = None) -> RunningTurn:
        """Begin a turn. Raises ChatUnavailable (400), UnknownConversation (404), ChatBusy
        (409: a turn of that conversation runs, or a voice session writes into it)."""
        if self.engine is None:
            raise ChatUnavailable(self.refusal or "chat is not available")
        conversation = await self.history.resolve(conversation_id)
        voice = self.history.live_voice(conversation.id)
        if voice is not None:
            raise ChatBusy(
                f"a voice session ({voice}) is live in this conversation: talk or type there "
                "(POST /api/realtime/say), or end it first"
            )
        if conversation.id in self._running:
            raise ChatBusy("a chat turn of this conversation is already running")
        ctx = CallContext(
            session_id=f"chat-{uuid.uuid4().hex[:12]}",
            channel=Channel.CHAT,
            role=Role.OWNER,  # the control API is loopback or token-protected: the owner
            caller_name=self.owner_name,
            verified=True,
        )
        running = RunningTurn(ChatTurn(ctx, conversation, message, lambda piece: None))
        running.turn.emit = running.emit
        self._running[conversation.id] = running
        self._sessions[ctx.session_id] = running
        self.bus.publish(ChatStarted(ctx.session_id, conversation.id))
        running.task = asyncio.get_running_loop().create_task(
            self._run(running), name=f"chat:{ctx.session_id}"
        )
        return running

    async def _run(self, running: RunningTurn) -> TurnResult:
        assert self.engine is not None
        status, error = "failed", None
        try:
            result = await self.engine.run(running.turn)
            status, error = result.status, result.error
            return result
        except asyncio.CancelledError:
            status = "stopped"
            running.emit(running.stopped())  # a reader still waiting gets its end
            raise
        except Exception as exc:
            error = f"internal error ({type(exc).__name__})"
            log.exception("chat %s crashed", running.session_id)
            result = TurnResult(
                running.conversation_id, running.session_id, running.turn.reply, [], "failed", error
            )
            running.emit(result)
            return result
        finally:
            self._running.pop(running.conversation_id, None)
            self._sessions.pop(running.session_id, None)
            self.bus.publish(ChatEnded(running.session_id, running.conversation_id, status, error))

    def on_approval(self, approval: Approval) -> None:
        """The approval service's watcher: a prompt of a running turn is one of its pieces."""
        running = self._sessions.get(approval.ctx.session_id)
        if running is not None:
            call = approval.call
            running.emit(ApprovalNotice(approval.id, call.name, call.call_id, approval.state.value))

    async def aclose(self) -> None:
        """Shutdown: stop every running turn (their partial replies are kept)."""
        running = list(self._running.values())
        for turn in running:
            turn.stop()
        for turn in running:
            if turn.task is not None:
                with contextlib.suppress(BaseException):
                    async with asyncio.timeout(STOP_WAIT_S):
                        await turn.task
