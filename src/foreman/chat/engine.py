"""One chat turn: the owner's message, the model's streamed answer, and its tool calls
through the same dispatcher, gatekeeper and approvals as voice (channel `chat`).

    message ─> history (typed turn, durable) ─> context (the conversation so far, with the
    summaries of voice sessions) ─> stream the model's answer ─ text ─> reply turn
                                                    └─ tool calls ─> the dispatcher, as tasks
      output arrives ─> tool message ─> the model answers from it (next round)
      a note arrives (approval pending, still running) while outputs are withheld
          ─> a short answer from the model with the note and without the pending call:
             it is told nothing has happened yet, and says so

Why the interim answer leaves the pending call out: the wire format wants every tool call
answered by its output before the model speaks again, and the only honest output is the
real one, which waits for the owner. So the model sees its request as a note instead, and
the real output follows in the round after, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from foreman.chat.context import chat_messages, json_or_text
from foreman.chat.history import ConversationHistory, SessionHistoryWriter
from foreman.chat.llm import ChatCompletionsClient, Completion, LLMError, TextDelta, to_chat_tool
from foreman.config import ChatConfig
from foreman.policy.context import CallContext
from foreman.stores.conversations import ConversationRecord
from foreman.tools.outputs import error_output, output_ok
from foreman.tools.request import ToolRequest

log = logging.getLogger(__name__)

VOICE_ONLY_TOOLS: Final = frozenset({"end_call"})  # a chat has no call to end
MAX_INTERIM_ANSWERS: Final = 3  # per batch of tool calls: notes never loop the model


class ToolHandler(Protocol):
    """The tool layer as a chat uses it (foreman.tools.dispatcher.ToolDispatcher)."""

    async def handle(self, request: ToolRequest, session: Any) -> None: ...

    def deadline_s(self, request: ToolRequest) -> float: ...

    def cancel_session(self, session_id: str) -> None: ...

    def tool_definitions(self, ctx: CallContext) -> list[dict[str, Any]]: ...


# --- what a turn streams ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReplyDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolStarted:
    call_id: str
    name: str
    arguments: Any


@dataclass(frozen=True, slots=True)
class ToolNote:
    """What the model was told about a running call (waiting for approval, still running)."""

    text: str


@dataclass(frozen=True, slots=True)
class ApprovalNotice:
    """An approval prompt of this turn opened or was answered."""

    approval_id: str
    tool: str
    call_id: str
    state: str


@dataclass(frozen=True, slots=True)
class ToolFinished:
    call_id: str
    name: str
    ok: bool
    output: str


@dataclass(frozen=True)
class TurnResult:
    conversation_id: str
    session_id: str
    reply: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    status: str = "completed"  # completed | stopped | failed
    error: str | None = None


Piece = ReplyDelta | ToolStarted | ToolNote | ApprovalNotice | ToolFinished | TurnResult
Emit = Callable[[Piece], None]


class ChatToolSession:
    """The tool layer's `ToolSession` for one chat turn: outputs and notes are collected
    for the turn to act on; nothing is ever sent twice."""

    def __init__(self, ctx: CallContext, writer: SessionHistoryWriter, emit: Emit) -> None:
        self.ctx = ctx
        self.outputs: dict[str, tuple[str, bool]] = {}
        self.notes: list[str] = []
        self._writer = writer
        self._emit = emit
        self._names: dict[str, str] = {}
        self.changed = asyncio.Event()

    def expect(self, call_id: str, name: str) -> None:
        self._names[call_id] = name

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        if call_id in self.outputs:
            log.warning("chat %s: second output for %s dropped", self.ctx.session_id, call_id)
            return
        self.outputs[call_id] = (output, respond)
        self._writer.tool_result(call_id, output)
        self._emit(ToolFinished(call_id, self._names.get(call_id, ""), output_ok(output), output))
        self.changed.set()

    async def notify_model(self, text: str) -> None:
        self.notes.append(text)
        self._emit(ToolNote(text))
        self.changed.set()

    def request_end(self, reason: str) -> None:
        """A chat has no call to hang up: it stays in text mode."""
        log.info("chat %s: %s asked for no call to end", self.ctx.session_id, reason)


@dataclass
class ChatTurn:
    """One running turn; `emit` hands pieces to whoever streams them."""

    ctx: CallContext
    conversation: ConversationRecord
    message: str
    emit: Emit
    texts: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reply(self) -> str:
        return "\n\n".join(t for t in self.texts if t)


class ChatEngine:
    def __init__(
        self,
        llm: ChatCompletionsClient,
        history: ConversationHistory,
        config: ChatConfig,
        *,
        tools: ToolHandler | None = None,
        owner_name: str = "",
    ) -> None:
        self.llm = llm
        self.history = history
        self.config = config
        self.tools = tools
        self.owner_name = owner_name

    def instructions(self) -> str:
        who = f", {self.owner_name}" if self.owner_name else ""
        return f"{self.config.instructions} You are chatting by text with the owner{who}."

    async def run(self, turn: ChatTurn) -> TurnResult:
        """Run the turn to its end; the result is also the last piece emitted. Cancelling
        stops it (pending approvals are cancelled, the partial reply is kept)."""
        writer = self.history.writer(turn.ctx, turn.conversation, summarize=False)
        status, error = "completed", None
        try:
            # A voice session that just ended in this conversation may still be writing its
            # summary: it goes first, so the message comes after it and sees it.
            await self.history.settled(
                turn.conversation.id, self.history.config.summary_timeout_s + 5
            )
            writer.typed(turn.message)
            await writer.flush()
            await self._answer(turn, writer)
        except asyncio.CancelledError:
            status = "stopped"
            raise
        except LLMError as exc:
            status, error = "failed", str(exc)
            log.warning("chat %s failed: %s", turn.ctx.session_id, exc)
        finally:
            if self.tools is not None:
                self.tools.cancel_session(turn.ctx.session_id)
            if turn.partial:  # the answer that was streaming when it stopped
                writer.reply("".join(turn.partial), stopped=True)
                turn.texts.append("".join(turn.partial))
            writer.ended(status)
            with contextlib.suppress(Exception):
                await asyncio.shield(writer.flush())  # a stopped turn still keeps its words
        result = TurnResult(
            turn.conversation.id,
            turn.ctx.session_id,
            turn.reply,
            turn.tool_calls,
            status,
            error,
        )
        turn.emit(result)
        return result

    async def _answer(self, turn: ChatTurn, writer: SessionHistoryWriter) -> None:
        context = await self.history.context(turn.conversation.id)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self.instructions()},
            *chat_messages(context),
        ]
        tools = self._tools(turn.ctx)
        for _ in range(self.config.max_tool_rounds):
            completion = await self._stream(turn, writer, messages, tools)
            if not completion.tool_calls:
                return
            messages.append(completion.assistant_message())
            answers, respond = await self._run_tools(turn, writer, completion, messages)
            messages.extend(answers)
            if not respond:  # every output said the model need not answer (as in voice)
                return
        log.warning(
            "chat %s: stopped after %d tool rounds",
            turn.ctx.session_id,
            self.config.max_tool_rounds,
        )

    def _tools(self, ctx: CallContext) -> list[dict[str, Any]]:
        if self.tools is None:
            return []
        offered = self.tools.tool_definitions(ctx)
        return [to_chat_tool(t) for t in offered if t.get("name") not in VOICE_ONLY_TOOLS]

    async def _stream(
        self,
        turn: ChatTurn,
        writer: SessionHistoryWriter,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        **data: Any,
    ) -> Completion:
        completion = Completion("")
        turn.partial = []
        async for event in self.llm.stream(messages, tools=tools):
            if isinstance(event, TextDelta):
                turn.partial.append(event.text)
                turn.emit(ReplyDelta(event.text))
            else:
                completion = event
        turn.partial = []
        if completion.text:
            writer.reply(completion.text, **data)
            turn.texts.append(completion.text)
        return completion

    async def _run_tools(
        self,
        turn: ChatTurn,
        writer: SessionHistoryWriter,
        completion: Completion,
        messages: Sequence[Mapping[str, Any]],
    ) -> tuple[list[dict[str, Any]], bool]:
        """Run the round's calls to their outputs; returns the tool messages in call order,
        and whether the model should answer from them. While outputs are withheld, notes get
        a short answer from the model (see the module doc)."""
        session = ChatToolSession(turn.ctx, writer, turn.emit)
        calls = completion.tool_calls
        interim = 0
        async with asyncio.TaskGroup() as tg:
            for call in calls:
                session.expect(call.call_id, call.name)
                writer.tool_call(call.call_id, call.name, call.arguments)
                turn.emit(ToolStarted(call.call_id, call.name, json_or_text(call.arguments)))
                request = ToolRequest(call.call_id, call.name, call.arguments)
                tg.create_task(self._tool_job(request, session), name=f"chat-tool:{call.name}")
            while len(session.outputs) < len(calls):
                await session.changed.wait()
                session.changed.clear()
                notes, session.notes = session.notes, []
                if notes and len(session.outputs) < len(calls) and interim < MAX_INTERIM_ANSWERS:
                    interim += 1
                    await self._interim(turn, writer, messages, completion, notes)
        answers = []
        respond_any = False
        for call in calls:
            output, respond = session.outputs[call.call_id]
            respond_any = respond_any or respond
            turn.tool_calls.append(
                {
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": json_or_text(call.arguments),
                    "ok": output_ok(output),
                    "output": output,
                }
            )
            answers.append({"role": "tool", "tool_call_id": call.call_id, "content": output})
        return answers, respond_any

    async def _interim(
        self,
        turn: ChatTurn,
        writer: SessionHistoryWriter,
        messages: Sequence[Mapping[str, Any]],
        completion: Completion,
        notes: Sequence[str],
    ) -> None:
        """The model hears the notes and answers meanwhile, without the pending calls."""
        before = list(messages[:-1])  # everything but the assistant's tool calls
        if completion.text:
            before.append({"role": "assistant", "content": completion.text})
        before.append({"role": "system", "content": "\n".join(notes)})
        try:
            await self._stream(turn, writer, before, (), interim=True)
        except LLMError as exc:  # the real output still comes; the turn goes on
            log.warning("chat %s: interim answer failed: %s", turn.ctx.session_id, exc)

    async def _tool_job(self, request: ToolRequest, session: ChatToolSession) -> None:
        """One call to its one output, whatever happens (as a voice session does it)."""
        tools = self.tools
        try:
            if tools is None:
                raise LookupError(f"tool {request.name!r} is not available here")
            async with asyncio.timeout(tools.deadline_s(request)):
                await tools.handle(request, session)
        except TimeoutError:
            await session.send_tool_result(
                request.call_id,
                error_output(f"{request.name} did not finish in time; it may not be done"),
            )
        except LookupError as exc:
            await session.send_tool_result(request.call_id, error_output(str(exc)))
        except Exception as exc:
            log.exception("chat %s: tool %s failed", session.ctx.session_id, request.name)
            await session.send_tool_result(
                request.call_id,
                error_output(f"{request.name} failed: internal error ({type(exc).__name__})"),
            )
        else:
            if request.call_id not in session.outputs:
                await session.send_tool_result(
                    request.call_id, error_output(f"{request.name} returned no result")
                )
