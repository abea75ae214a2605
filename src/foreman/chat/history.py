"""One history for chat and voice: the owner's current conversation, one writer per session
that records what is said and done, seeding for voice sessions, and summaries when a voice
session ends.

Writers are fed directly by their session (a typed turn, a whole utterance, a tool call, its
output) and by the approval service (prompts and answers): no bus in between, so nothing is
dropped when a reader is slow. Each writer stores its turns in order on a task of its own,
so a session never waits for the disk; a turn is on the bus (`history.turn`) only once it is
stored, which makes everything a client has seen durable. When a voice session ends, its
writer appends a `summary` turn: written by the chat model when there is one (a digest of
the transcript when it fails or there is none), so the next chat turn knows what was said
and done by voice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from foreman.bus import EventBus
from foreman.chat.context import (
    SeedRole,
    digest,
    heard_text,
    json_or_text,
    render_text,
    select,
    voice_seed,
)
from foreman.chat.llm import ChatCompletionsClient, LLMError
from foreman.clock import Clock
from foreman.config import HistoryConfig
from foreman.events import HistoryTurnAdded
from foreman.policy.approvals import Approval
from foreman.policy.context import CallContext, Channel, Role
from foreman.stores.conversations import (
    OWNER_PARTY,
    ConversationRecord,
    ConversationStore,
    Turn,
    TurnKind,
)
from foreman.stores.records import INTERRUPTED_REASON
from foreman.tools.outputs import output_ok

log = logging.getLogger(__name__)

SAID_KINDS: Final = frozenset({"typed", "spoken", "reply", "speech"})
CLOSE_WAIT_S: Final = 10.0  # at shutdown, how long the last writes may take
SUMMARY_PROMPT: Final = (
    "Summarize this voice conversation for the assistant that continues it by text. In "
    "at most four sentences: what the user asked or said, what the assistant answered, "
    "which actions were taken and how they ended (done, denied, still pending), and what "
    "is left open. Only facts from the transcript; plain text."
)


class UnknownConversation(LookupError):
    """No conversation has that id (HTTP 404)."""


@dataclass(frozen=True)
class VoiceStart:
    """Where a voice session writes, and what it starts with."""

    conversation_id: str
    party: str
    seed: tuple[tuple[SeedRole, str], ...] = ()


class Summarizer(Protocol):
    async def summarize(self, turns: Sequence[Turn], *, channel: str, caller: str) -> str:
        """A few sentences on what was said and done; raise to fall back to the digest."""
        ...


class ModelSummarizer:
    """Summaries written by the chat model."""

    def __init__(self, llm: ChatCompletionsClient) -> None:
        self.llm = llm

    async def summarize(self, turns: Sequence[Turn], *, channel: str, caller: str) -> str:
        lines = [f"{_speaker(t)}: {render_text(t)}" for t in turns]
        who = f"Channel: {channel}" + (f", with {caller}" if caller else "")
        messages = [
            {"role": "system", "content": SUMMARY_PROMPT},
            {"role": "user", "content": who + "\n\n" + "\n".join(lines)},
        ]
        text = (await self.llm.complete(messages)).text.strip()
        if not text:
            raise LLMError("the model wrote an empty summary")
        return text


class ConversationHistory:
    """The asyncio side of the conversation store. Build once per server."""

    def __init__(
        self,
        store: ConversationStore,
        bus: EventBus,
        clock: Clock,
        config: HistoryConfig,
        *,
        summarizer: Summarizer | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.config = config
        self.summarizer = summarizer if config.summary == "model" else None
        self._writers: dict[str, SessionHistoryWriter] = {}
        self._current = asyncio.Lock()
        self._closing = False

    # --- conversations ---------------------------------------------------------------------
    async def current(self) -> ConversationRecord:
        """The owner's current conversation (newest activity), made when there is none."""
        async with self._current:  # two first turns at once must not make two conversations
            latest = await self.store.latest(OWNER_PARTY)
            return latest if latest is not None else await self.create(OWNER_PARTY)

    async def resolve(self, conversation_id: str | None) -> ConversationRecord:
        """The conversation with this id (UnknownConversation), or the current one."""
        if conversation_id is None:
            return await self.current()
        record = await self.store.get(conversation_id)
        if record is None:
            raise UnknownConversation(f"no conversation with id {conversation_id!r}")
        return record

    async def create(self, party: str, conversation_id: str | None = None) -> ConversationRecord:
        now = self.clock.wall()
        record = ConversationRecord(conversation_id or new_conversation_id(), party, now, now)
        await self.store.create(record)
        return record

    async def context(self, conversation_id: str) -> list[Turn]:
        """What a chat turn sees of the conversation (`[history] context_*`)."""
        cfg = self.config
        turns = await self.store.last_turns(conversation_id, cfg.context_turns)
        return select(turns, max_turns=cfg.context_turns, max_tokens=cfg.context_tokens)

    # --- sessions --------------------------------------------------------------------------
    async def begin_voice(self, ctx: CallContext) -> VoiceStart:
        """Where a voice session writes and its seed. The verified owner continues the
        current conversation, seeded with its recent turns (`[history] seed_*`); anyone
        else starts a conversation of their own (made with its first turn) and hears
        nothing of the owner's."""
        if ctx.role is not Role.OWNER or not ctx.verified:
            return VoiceStart(new_conversation_id(), f"caller:{ctx.caller_id or 'unknown'}")
        record = await self.current()
        cfg = self.config
        turns = await self.store.last_turns(record.id, cfg.seed_turns) if cfg.seed_turns else []
        picked = select(turns, max_turns=cfg.seed_turns, max_tokens=cfg.seed_tokens)
        return VoiceStart(record.id, OWNER_PARTY, voice_seed(picked))

    async def voice_start(self, ctx: CallContext) -> VoiceStart | None:
        """`begin_voice`, or None when the store fails (logged): a call or a voice session
        never fails for its history; it runs unseeded and unrecorded."""
        try:
            return await self.begin_voice(ctx)
        except Exception:
            log.exception("history: %s starts without its conversation", ctx.session_id)
            return None

    def writer(
        self, ctx: CallContext, start: VoiceStart | ConversationRecord, *, summarize: bool = True
    ) -> SessionHistoryWriter:
        """The writer for one session (its `history` hook). Register it before the session
        runs: approvals are routed to it by session id."""
        conversation_id = start.conversation_id if isinstance(start, VoiceStart) else start.id
        writer = SessionHistoryWriter(self, ctx, conversation_id, start.party, summarize=summarize)
        self._writers[ctx.session_id] = writer
        return writer

    def live_voice(self, conversation_id: str) -> str | None:
        """The id of a voice session writing into this conversation now, if any."""
        for session_id, writer in self._writers.items():
            voice = writer.ctx.channel is not Channel.CHAT
            if voice and writer.conversation_id == conversation_id and not writer.ending:
                return session_id
        return None

    async def settled(self, conversation_id: str, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until sessions that ended in this conversation have
        stored everything, their summary included."""
        ending = [
            w for w in self._writers.values() if w.conversation_id == conversation_id and w.ending
        ]
        if ending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await asyncio.gather(*(w.wait_done() for w in ending))

    def on_approval(self, approval: Approval) -> None:
        """The approval service's watcher: the prompt goes to its session's writer."""
        writer = self._writers.get(approval.ctx.session_id)
        if writer is not None:
            writer.approval(approval)

    async def recover(self, session_ids: Sequence[str]) -> int:
        """At start-up: a digest summary for each voice session a crash cut short (it said
        something and has no summary). Returns how many were written."""
        written = 0
        for session_id in session_ids:
            turns = await self.store.session_turns(session_id)
            said = [t for t in turns if t.kind in SAID_KINDS]
            if not said or any(t.kind == "summary" for t in turns) or said[0].channel == "chat":
                continue
            first = said[0]
            text = digest(
                turns, channel=first.channel, caller=first.caller, reason=INTERRUPTED_REASON
            )
            data = {"session_id": session_id, "source": "digest", "reason": INTERRUPTED_REASON}
            summary = Turn(
                "summary", text, first.channel, session_id, self.clock.wall(), first.caller, data
            )
            await self.append(first.conversation_id, summary)
            written += 1
        return written

    async def append(self, conversation_id: str, turn: Turn) -> Turn:
        """Store a turn (durable on return), then say so on the bus."""
        stored = await self.store.append(conversation_id, turn)
        self.bus.publish(
            HistoryTurnAdded(
                conversation_id,
                stored.seq,
                stored.kind,
                stored.role,
                stored.text,
                stored.channel,
                stored.session_id,
            )
        )
        return stored

    def shutting_down(self) -> None:
        """From now on summaries are digests: no model call on the way out."""
        self._closing = True

    async def aclose(self) -> None:
        """Shutdown, after the sessions ended: the last writes get a little time to land."""
        self._closing = True
        pending = [w.wait_done() for w in list(self._writers.values()) if w.ending]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_WAIT_S):
                    await asyncio.gather(*pending)

    async def _summary(
        self, turns: Sequence[Turn], channel: str, caller: str, reason: str
    ) -> tuple[str, str]:
        if self.summarizer is not None and not self._closing:
            try:
                async with asyncio.timeout(self.config.summary_timeout_s):
                    return await self.summarizer.summarize(
                        turns, channel=channel, caller=caller
                    ), "model"
            except (LLMError, TimeoutError) as exc:
                log.warning("summary by the model failed (%s); writing a digest", exc)
            except Exception:
                log.exception("summary by the model failed; writing a digest")
        return digest(turns, channel=channel, caller=caller, reason=reason), "digest"

    def _forget(self, writer: SessionHistoryWriter) -> None:
        if self._writers.get(writer.session_id) is writer:
            del self._writers[writer.session_id]


class _End:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class SessionHistoryWriter:
    """Records one session's turns, in order, off the session's path. Its methods return at
    once; `flush()` waits until everything handed over is stored. Implements the history
    hook of `session.conversation.ConversationSession`."""

    def __init__(
        self,
        history: ConversationHistory,
        ctx: CallContext,
        conversation_id: str,
        party: str,
        *,
        summarize: bool,
    ) -> None:
        self.history = history
        self.ctx = ctx
        self.session_id = ctx.session_id
        self.conversation_id = conversation_id
        self.party = party
        self.summarize = summarize
        self.ending = False
        self.written: list[Turn] = []
        self._names: dict[str, str] = {}
        self._queue: asyncio.Queue[Turn | _End] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()

    # --- what a session hands over --------------------------------------------------------
    def typed(self, text: str) -> None:
        self._put("typed", text)

    def utterance(self, role: str, text: str, heard_ms: int | None, audio_ms: int | None) -> None:
        """A whole utterance. For the assistant after a barge-in, `heard_ms` is where the
        user stopped hearing it and `audio_ms` how long its audio was (None: unknown): the
        stored text stops where the user stopped hearing."""
        if role == "user":
            self._put("spoken", text)
            return
        if heard_ms is None:
            self._put("speech", text)
            return
        data: dict[str, Any] = {"cut": True, "heard_ms": heard_ms, "full_text": text}
        heard = text
        if audio_ms:
            data["audio_ms"] = audio_ms
            heard = heard_text(text, heard_ms, audio_ms)
        self._put("speech", heard, data)

    def reply(self, text: str, **data: Any) -> None:
        """Written assistant text (chat)."""
        self._put("reply", text, data)

    def tool_call(self, call_id: str, name: str, arguments: str) -> None:
        self._names[call_id] = name
        data = {"call_id": call_id, "name": name, "arguments": json_or_text(arguments)}
        self._put("tool_call", name, data)

    def tool_result(self, call_id: str, output: str) -> None:
        name = self._names.get(call_id, "")
        self._put(
            "tool_result", output, {"call_id": call_id, "name": name, "ok": output_ok(output)}
        )

    def approval(self, approval: Approval) -> None:
        data = {
            "approval_id": approval.id,
            "tool": approval.call.name,
            "call_id": approval.call.call_id,
            "state": approval.state.value,
            "approver": approval.approver,
            "note": approval.note,
        }
        self._put("approval", f"{approval.call.name}: {approval.state.value}", data)

    def ended(self, reason: str) -> None:
        """The session is over: store what is left, then (voice) the summary."""
        if self.ending:
            return
        self.ending = True
        self._enqueue(_End(reason))

    async def flush(self) -> None:
        """Wait until everything handed over so far is stored (or failed, and was logged)."""
        await self._queue.join()

    async def wait_done(self) -> None:
        """Wait until the writer has finished (after `ended`)."""
        await self._done.wait()

    # --- the writing task -------------------------------------------------------------------
    def _put(self, kind: TurnKind, text: str, data: dict[str, Any] | None = None) -> None:
        if self.ending:  # the session has ended: nothing of it can come after its summary
            log.warning("history: a %s turn of %s came after its end", kind, self.session_id)
            return
        ctx = self.ctx
        turn = Turn(
            kind=kind,
            text=text,
            channel=str(ctx.channel),
            session_id=self.session_id,
            at=self.history.clock.wall(),
            caller=ctx.caller_name or ctx.caller_id,
            data=data or {},
        )
        self._enqueue(turn)

    def _enqueue(self, item: Turn | _End) -> None:
        self._queue.put_nowait(item)
        if self._task is None:
            # Not in the session's task group: what was said is stored even as it ends.
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"history:{self.session_id}"
            )

    async def _run(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                try:
                    if isinstance(item, _End):
                        await self._finish(item.reason)
                        return
                    await self._store(item)
                finally:
                    self._queue.task_done()
        finally:
            self._done.set()
            self.history._forget(self)

    async def _store(self, turn: Turn) -> None:
        try:
            if not self.written and self.party != OWNER_PARTY:
                await self._ensure_conversation()
            self.written.append(await self.history.append(self.conversation_id, turn))
        except Exception:
            log.exception("history: a %s turn of %s was not stored", turn.kind, self.session_id)

    async def _ensure_conversation(self) -> None:
        if await self.history.store.get(self.conversation_id) is None:
            await self.history.create(self.party, self.conversation_id)

    async def _finish(self, reason: str) -> None:
        if not self.summarize or not any(t.kind in SAID_KINDS for t in self.written):
            return
        ctx = self.ctx
        caller = ctx.caller_name or ctx.caller_id
        text, source = await self.history._summary(self.written, str(ctx.channel), caller, reason)
        data = {"session_id": self.session_id, "source": source, "reason": reason}
        turn = Turn(
            "summary",
            text,
            str(ctx.channel),
            self.session_id,
            self.history.clock.wall(),
            caller,
            data,
        )
        await self._store(turn)


def new_conversation_id() -> str:
    return f"conv-{uuid.uuid4().hex[:16]}"


def _speaker(turn: Turn) -> str:
    return {"user": "User", "assistant": "Assistant"}.get(turn.role, "Note")
