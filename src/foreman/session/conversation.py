"""`ConversationSession`: one conversation between a user-side endpoint and a voice backend.

One class for every channel: a phone call (Twilio endpoint), the API's text session (text
endpoint), later the desk speaker and a browser. It owns an `asyncio.TaskGroup` holding the
backend reader, the endpoint reader, the backend's and the endpoint's own tasks, and one
task per tool call. Any of them ends the session by raising `ConversationEnded(reason)`; an
unexpected exception ends only this session, with the exception as the logged reason.
Cleanup (pending approvals cancelled, backend and endpoint closed, `session.ended`
published, the owner told) runs in `run()`'s `finally`, whatever ended it.

What the session decides, for every backend and endpoint alike, lives here and in the
session's parts:
* barge-in (here): on `UserSpeechStarted` the endpoint stops playback at once and says where
  it stopped; the backend is told what was heard and decides how to stop (Realtime: cancel
  and truncate). Late audio of a cut-off reply is dropped.
* the end (`ending.SessionEnd`): now, or after the goodbye was said and heard, or because
  the model is gone.
* tool calls (`tool_jobs.ToolJobs`): tasks of the session; whatever happens to one, the
  model gets exactly one output for it.
* input (`user_input.UserInput`): converted only when formats differ, gaps filled with
  silence, continuous input kept flowing.
* utterances and history (`transcript_writer.TranscriptWriter`); typed turns
  (`text_turns.TextTurns`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from foreman.backends import interface as b
from foreman.bus import EventBus
from foreman.clock import Clock, SystemClock
from foreman.endpoints import interface as e
from foreman.events import (
    BargeIn,
    DtmfPressed,
    SessionEnded,
    SessionReady,
    SessionStarted,
    SessionWarning,
    SpeechStarted,
    SpeechStopped,
)
from foreman.exceptions import ConversationEnded
from foreman.policy.context import CallContext
from foreman.session.ending import END_PLAYOUT_LIMIT_S, SessionEnd
from foreman.session.text_turns import MAX_TURN_BACKLOG, TextTurns, TurnInProgress
from foreman.session.tool_jobs import MAX_TOOL_CALLS, ToolHandler, ToolJobs
from foreman.session.transcript_writer import HistoryHook, TranscriptWriter
from foreman.session.turns import TurnTracker
from foreman.session.user_input import UserInput
from foreman.tools.request import ToolRequest

# The parts' names that callers use with the session stay importable from here too.
__all__ = ["ConversationSession", "HistoryHook", "SessionStats", "ToolHandler", "TurnInProgress"]

log = logging.getLogger("foreman.session")

_Handler = Callable[["ConversationSession", Any], Awaitable[None] | None]
_CLOSE_BACKEND_S: Final = 5.0  # a stuck backend must not keep the session alive


@dataclass(slots=True)
class SessionStats:
    barge_ins: int = 0
    late_audio_dropped: int = 0
    replies: int = 0
    tool_calls: int = 0
    dtmf: int = 0
    warnings: int = 0
    last_warning: str = ""
    audio_out_bytes: int = 0
    bad_input: int = 0
    silence_filled_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class ConversationSession:
    """Build it with a started backend and an admitted endpoint, then `await run()`.

    Implements the tool layer's `ToolSession`: `ctx`, `send_tool_result`, `notify_model`,
    `request_end`.
    """

    # One per live call: slots keep each session small (no per-instance dict).
    __slots__ = (
        "_bus", "_clock", "_done", "_end", "_history", "_input", "_jobs", "_on_end", "_text",
        "_tg", "_writer", "backend", "ctx", "ended_at", "endpoint", "error", "labels",
        "reason", "session_id", "started_at", "stats", "turns",
    )  # fmt: skip

    def __init__(
        self,
        ctx: CallContext,
        backend: b.VoiceBackend,
        endpoint: e.AudioEndpoint,
        *,
        bus: EventBus | None = None,
        tools: ToolHandler | None = None,
        clock: Clock | None = None,
        on_end: Callable[[ConversationSession], Any] | None = None,
        labels: Mapping[str, str] | None = None,
        utterance_gap_s: float = 0.8,
        end_playout_limit_s: float = END_PLAYOUT_LIMIT_S,
        max_tool_calls: int = MAX_TOOL_CALLS,
        max_turn_backlog: int = MAX_TURN_BACKLOG,
        history: HistoryHook | None = None,
    ) -> None:
        self.ctx = ctx
        self.labels = dict(labels or {})  # the channel's own facts (a call's sid, ...)
        self.session_id = ctx.session_id
        self.backend = backend
        self.endpoint = endpoint
        self._bus = bus or EventBus()
        self._clock = clock or SystemClock()
        self._on_end = on_end
        self._history = history
        self.stats = SessionStats()
        self.turns = TurnTracker()
        self.reason: str | None = None
        self.error: str | None = None  # set when the backend failed
        self.started_at = self._clock.wall()
        self.ended_at: float | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._done = asyncio.Event()
        self._end = SessionEnd(self, end_playout_limit_s)
        self._jobs = ToolJobs(self, tools, history, max_tool_calls)
        self._text = TextTurns(self, max_turn_backlog)
        self._writer = TranscriptWriter(
            self.session_id,
            self._bus,
            self._clock,
            backend,
            gap_s=utterance_gap_s,
            history=history,
            on_user_utterance=self._jobs.on_user_utterance if tools is not None else None,
        )
        self._input = UserInput(backend, endpoint, self.stats, self._clock, self._on_endpoint_event)

    # === lifecycle =========================================================================
    async def run(self) -> str:
        """Run until the session ends; returns the reason. Never raises for session errors."""
        reason = "ended"
        self.endpoint.set_output_format(self.backend.output_format)
        backend = self.backend.status()
        ctx = self.ctx
        self._publish(
            SessionStarted(
                self.session_id,
                str(ctx.channel),
                ctx.caller_name or ctx.caller_id,
                str(ctx.role),
                backend.backend,
                backend.model,
                self.labels,
            )
        )
        log.info(
            "%s started: %s, caller %s, model %s, backend %s, provider_session_id %s",
            self.session_id,
            ctx.channel,
            _caller(ctx),
            backend.model,
            backend.backend,
            backend.provider_session_id or "-",
        )
        crash: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self.backend.run(tg)
                await self.endpoint.run(tg, self._input.side)
                tg.create_task(self._read_backend(), name=f"backend<{self.session_id}")
                if not self.backend.capabilities.final_transcripts:  # pieces close by silence
                    tg.create_task(
                        self._writer.close_by_silence(), name=f"utterances:{self.session_id}"
                    )
                if self.backend.capabilities.needs_continuous_input:
                    tg.create_task(self._input.keep_flowing(), name=f"input:{self.session_id}")
        except* ConversationEnded as group:
            reason = _first_reason(group)
        except* Exception as group:
            crash = group.exceptions[0]
            reason = f"error: {type(crash).__name__}: {crash}"
        finally:
            self._tg = None
            if self.reason is None:
                self.reason = reason
            await self._cleanup(crash)
        return self.reason

    def end(self, reason: str) -> None:
        """End now (API stop, shutdown), without a goodbye or a hang-up."""
        self._end.now(reason)

    async def hang_up_now(self, reason: str) -> None:
        """End now and hang up the user's side (a phone call is ended through REST). The
        session's reason is `reason`, even if the user's side closes first in reply."""
        self._end.hang_up_now(reason)

    def request_end(self, reason: str = "end_call") -> None:
        """End politely: let the goodbye be said and heard, then hang up. Returns at once.
        Asked from inside a tool call (end_call), the end starts once that call's output
        has been sent."""
        if self._end.started or self._tg is None:
            return
        if self._jobs.defer_end(reason):
            return
        self._end.begin(reason)

    async def wait_closed(self) -> None:
        await self._done.wait()

    @property
    def active(self) -> bool:
        return not self._done.is_set()

    async def _cleanup(self, crash: BaseException | None = None) -> None:
        self.ended_at = self._clock.wall()
        self._writer.flush()
        self._jobs.cancel()
        try:
            await asyncio.wait_for(self.backend.close(), _CLOSE_BACKEND_S)
        except Exception as exc:  # a stuck backend must not keep the session alive
            log.warning("%s: backend close failed: %r", self.session_id, exc)
        await self.endpoint.close()
        self._text.notify(b.Closed(self.error))
        if self._history is not None:
            self._history.ended(self.reason or "ended")
        if crash is not None:  # a bug: the traceback is for its report
            log.error("%s failed: %s", self.session_id, self.reason, exc_info=crash)
        elif self.error:
            log.warning("%s failed: %s", self.session_id, self.reason)
        else:
            log.info("%s ended: %s", self.session_id, self.reason)
        self._publish(
            SessionEnded(self.session_id, self.reason or "ended", self.error, self.status_stats())
        )
        if self._on_end is not None:
            try:
                res = self._on_end(self)
                if asyncio.iscoroutine(res):
                    await res
            except Exception:
                log.exception("%s: on_end hook failed", self.session_id)
        self._done.set()

    # === backend -> user ===================================================================
    async def _read_backend(self) -> None:
        handlers: dict[type[Any], _Handler] = _BACKEND_HANDLERS
        play = self.endpoint.play
        turns = self.turns
        stats = self.stats
        listeners, notify = self._text.listeners, self._text.notify
        writer = self._writer  # counts the playing segment's audio when there is a history
        measuring = self._history is not None
        async for event in self.backend.events():
            if listeners:
                notify(event)
            if type(event) is b.AssistantAudio:  # the hot path: no dict lookup
                if measuring:
                    if event.segment != writer.segment:
                        writer.segment, writer.segment_bytes = event.segment, 0
                    writer.segment_bytes += len(event.audio)
                if turns.audio_wanted(event.reply):
                    stats.audio_out_bytes += len(event.audio)
                    play(event.segment, event.audio)
                else:
                    stats.late_audio_dropped += 1  # a cut-off reply's audio still arriving
                continue
            res = handlers.get(type(event), _ignore)(self, event)
            if res is not None:
                await res
        raise ConversationEnded("backend closed")

    def _on_ready(self, ev: b.Ready) -> None:
        self._publish(SessionReady(self.session_id, ev.model, ev.provider_session_id))

    def _on_reply_started(self, ev: b.ReplyStarted) -> None:
        self.turns.reply_started(ev.reply)

    def _on_reply_ended(self, ev: b.ReplyEnded) -> None:
        self.turns.reply_ended(ev.reply)
        self.stats.replies += 1
        if not self.backend.capabilities.turn_based:
            self._writer.close("assistant")

    def _on_idle(self, ev: b.AssistantIdle) -> None:
        self.turns.idle()
        self._end.progressed()

    async def _on_speech_started(self, ev: b.UserSpeechStarted) -> None:
        self._publish(SpeechStarted(self.session_id, ev.at_ms))
        await self.barge_in()

    async def _on_flush_requested(self, ev: b.FlushPlayback) -> None:
        await self.barge_in()

    async def barge_in(self) -> None:
        """Stop the assistant now: playback first (the endpoint decides with no await what
        was heard), then the backend is told where the user stopped hearing it."""
        cut = await self.endpoint.flush()
        if cut is None:
            return  # nothing queued or playing: no flush, nothing to cut
        self.turns.barge_in()
        self.stats.barge_ins += 1
        self._writer.cut(cut)
        self._end.progressed()
        log.debug("%s barge-in: %s heard_ms=%s", self.session_id, cut.segment, cut.ms)
        self._publish(BargeIn(self.session_id, cut.segment, cut.ms))
        await self.backend.report_heard(cut.segment, cut.ms)

    def _on_warning(self, ev: b.BackendWarning) -> None:
        self.stats.warnings += 1
        self.stats.last_warning = ev.message
        log.warning("%s: backend warning: %s", self.session_id, ev.message)
        self._publish(SessionWarning(self.session_id, ev.message, ev.code))

    # === user -> backend (the audio itself: `UserInput`) ===================================
    def _on_endpoint_event(self, event: e.EndpointEvent) -> Awaitable[None] | None:
        return _ENDPOINT_HANDLERS.get(type(event), _ignore)(self, event)

    async def _on_dtmf(self, ev: e.Dtmf) -> None:
        self.stats.dtmf += 1
        log.debug("%s dtmf %s", self.session_id, ev.digit)
        self._publish(DtmfPressed(self.session_id, ev.digit))
        await self.backend.add_note("context", f"The caller pressed {ev.digit}.")

    def _on_hung_up(self, ev: e.HungUp) -> None:
        raise ConversationEnded(ev.reason)

    # === the tool layer's ToolSession (the calls themselves: `ToolJobs`) ===================
    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """The call's one output; with `respond`, the model answers from it."""
        await self._jobs.send_result(call_id, output, respond=respond)

    async def notify_model(self, text: str) -> None:
        """Something the user should hear about ("waiting for approval", "still running"):
        the backend makes the model say so when it is quiet, so there is no dead air."""
        await self.backend.add_note("status", text)

    # === text turns (`TextTurns`) ==========================================================
    def say(self, text: str, *, audio: bool = False) -> AsyncIterator[dict[str, Any]]:
        """A typed user turn. Raises at once (SessionClosed, TurnInProgress: one turn at a
        time); the returned iterator sends the turn and yields the reply's pieces (see
        `TextTurn`), ending with {"done"}. Call `abandon_turn()` if the reader goes away
        before that, so the reply is stopped and cannot run into the next turn."""
        return self._text.say(text, audio=audio)

    async def abandon_turn(self) -> None:
        """The text turn's reader went away: stop its reply (nothing more was heard), so it
        cannot run into the next turn. Idempotent; nothing to do once the turn is done."""
        await self._text.abandon()

    async def end_user_turn(self) -> bool:
        """Push-to-talk release; False when the backend detects turns itself."""
        return await self.backend.end_user_turn()

    # === helpers ===========================================================================
    def _publish(self, event: Any) -> None:
        self._bus.publish(event)

    def status_stats(self) -> dict[str, Any]:
        return {**self.stats.as_dict(), **self.endpoint.status()}

    def status(self) -> dict[str, Any]:
        """What status shows of the session (safe to show)."""
        return {
            "session_id": self.session_id,
            **self.labels,
            "channel": str(self.ctx.channel),
            "caller": self.ctx.caller_id,
            "caller_name": self.ctx.caller_name,
            "role": str(self.ctx.role),
            "verified": self.ctx.verified,
            "started_at": self.started_at,
            "busy": self.turns.busy,
            "backend": self.backend.status().as_dict(),
            "stats": self.status_stats(),
        }


def _caller(ctx: CallContext) -> str:
    """Who is on the other side, for the log: name (number, role)."""
    details = [ctx.caller_id] if ctx.caller_name and ctx.caller_id else []
    return f"{ctx.caller_name or ctx.caller_id or 'unknown'} ({', '.join([*details, ctx.role])})"


def _ignore(_session: ConversationSession, _event: Any) -> None:
    return None


# What the session does with each event (shared by every session: nothing per instance).
_C = ConversationSession
_BACKEND_HANDLERS: dict[type[Any], _Handler] = {
    b.Ready: _C._on_ready,
    b.ReplyStarted: _C._on_reply_started,
    b.SegmentEnded: lambda s, ev: s.endpoint.end_segment(ev.segment),
    b.ReplyEnded: _C._on_reply_ended,
    b.AssistantIdle: _C._on_idle,
    b.UserSpeechStarted: _C._on_speech_started,
    b.UserSpeechStopped: lambda s, ev: s._publish(SpeechStopped(s.session_id, ev.at_ms)),
    b.FlushPlayback: _C._on_flush_requested,
    b.TranscriptSegment: lambda s, ev: s._writer.piece(ev),
    ToolRequest: lambda s, req: s._jobs.start(req),
    b.BackendWarning: _C._on_warning,
    b.Closed: lambda s, ev: s._end.backend_closed(ev.error),
}
_ENDPOINT_HANDLERS: dict[type[Any], _Handler] = {
    e.InputGap: lambda s, ev: s._input.fill_gap(ev.ms),
    e.Dtmf: _C._on_dtmf,
    e.Heard: _ignore,
    e.Drained: lambda s, _ev: s._end.progressed(),
    e.HungUp: _C._on_hung_up,
}


def _first_reason(group: BaseExceptionGroup[ConversationEnded]) -> str:
    for exc in group.exceptions:
        if isinstance(exc, ConversationEnded):
            return exc.reason
        if isinstance(exc, BaseExceptionGroup):
            return _first_reason(exc)
    return "ended"
