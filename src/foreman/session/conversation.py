"""`ConversationSession`: one conversation between a user-side endpoint and a voice backend.

One class for every channel: a phone call (Twilio endpoint), the API's text session (text
endpoint), later the desk speaker and a browser. It owns an `asyncio.TaskGroup` holding the
backend reader, the endpoint reader, the backend's and the endpoint's own tasks, and one
task per tool call. Any of them ends the session by raising `ConversationEnded(reason)`; an
unexpected exception ends only this session, with the exception as the logged reason.
Cleanup (pending approvals cancelled, backend and endpoint closed, `session.ended`
published, the owner told) runs in `run()`'s `finally`, whatever ended it.

What the session decides, for every backend and endpoint alike:
* barge-in: on `UserSpeechStarted` the endpoint stops playback at once and says where it
  stopped; the backend is told what was heard and decides how to stop (Realtime: cancel and
  truncate). Late audio of a cut-off reply is dropped.
* end of call: `request_end` waits until the backend is idle (the goodbye was said) and the
  endpoint has played everything (the goodbye was heard), then hangs up.
* tool calls run as tasks of the session; whatever happens to one (an error, a hang, a
  bug), the model gets exactly one output for it.
* input: audio is converted only when formats differ (base64 passes straight through when
  both sides allow), gaps are filled with silence, and a backend that needs continuous
  input gets silence whenever the endpoint sends none.
* history: the history hook is told every turn directly (typed text, whole utterances, tool
  calls and their outputs, the end); for an assistant utterance cut by a barge-in, also
  where the user stopped hearing it and how long its audio was, so its text can be cut there.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import contextvars
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from foreman.audio.convert import build_plan
from foreman.audio.formats import AudioFormat
from foreman.audio.jitter import silence_byte
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
    ToolRequested,
    TranscriptLine,
)
from foreman.exceptions import ConversationEnded, SessionClosed
from foreman.policy.context import CallContext
from foreman.session.transcripts import Utterance, UtteranceAssembler
from foreman.session.turns import TextTurn, ToolOutputSent, TurnTracker
from foreman.tools.request import ToolRequest

log = logging.getLogger("foreman.session")

END_PLAYOUT_LIMIT_S: Final = 30.0  # a goodbye never keeps a line open longer than this
MAX_TOOL_CALLS: Final = 8  # tool calls running at once ([limits] call_max_tool_calls)
MAX_TURN_BACKLOG: Final = 4096  # events a text turn's reader has not taken yet
INPUT_FRAME_MS: Final = 20
INPUT_STALL_S: Final = 0.06  # no user audio for this long: a continuous backend gets silence
_Handler = Callable[["ConversationSession", Any], Awaitable[None] | None]
# Set in the context of each tool-call task (tasks copy the context they are created in).
_in_tool_job: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tool_job", default=False)
_ERROR_OUTPUT: Final = '{{"ok": false, "error": {}}}'


class ToolHandler(Protocol):
    """The tool layer as a session uses it (foreman.tools.dispatcher.ToolDispatcher)."""

    async def handle(self, request: ToolRequest, session: Any) -> None:
        """Decide, maybe wait for an approval, run, and send the call's one output."""
        ...

    def deadline_s(self, request: ToolRequest) -> float:
        """The longest `handle` may take for `request` before the session answers for it."""
        ...

    def on_user_utterance(self, session: Any, text: str) -> None: ...

    def cancel_session(self, session_id: str) -> None: ...


class HistoryHook(Protocol):
    """Where a session's turns are recorded (foreman.chat.history.SessionHistoryWriter).
    Called on the session's path: every method returns at once."""

    def typed(self, text: str) -> None: ...

    def utterance(self, role: str, text: str, heard_ms: int | None, audio_ms: int | None) -> None:
        """A whole utterance; for the assistant after a barge-in, `heard_ms` is where the
        user stopped hearing it and `audio_ms` how long its audio was (None: unknown)."""
        ...

    def tool_call(self, call_id: str, name: str, arguments: str) -> None: ...

    def tool_result(self, call_id: str, output: str) -> None: ...

    def ended(self, reason: str) -> None: ...


class TurnInProgress(Exception):
    """A text turn is already running in this session (HTTP 409)."""


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
        "_answered", "_bus", "_clock", "_done", "_end_limit_s", "_end_requested", "_ending",
        "_history", "_in_plan", "_last_cut", "_last_input_at", "_listeners", "_max_tool_calls",
        "_max_turn_backlog", "_on_end", "_passthrough_b64", "_progress", "_segment",
        "_segment_bytes", "_tg", "_tool_jobs", "_tools", "_turn", "_user", "_utterance_due",
        "_utterances", "backend", "ctx", "ended_at", "endpoint", "error", "labels", "reason",
        "session_id", "started_at", "stats", "turns",
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
        self._tools = tools
        self._clock = clock or SystemClock()
        self._on_end = on_end
        self._end_limit_s = end_playout_limit_s
        self._max_tool_calls = max_tool_calls
        self._max_turn_backlog = max_turn_backlog
        self._tool_jobs = 0  # tool calls running now
        self.stats = SessionStats()
        self.turns = TurnTracker()
        self._utterances = UtteranceAssembler(
            utterance_gap_s, finals=backend.capabilities.final_transcripts
        )
        self.reason: str | None = None
        self.error: str | None = None  # set when the backend failed
        self.started_at = self._clock.wall()
        self.ended_at: float | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._ending = False
        # Set when the backend went idle or the endpoint played everything: what an ending
        # call waits on (made when first needed: most sessions never wait on it).
        self._progress: asyncio.Event | None = None
        self._done = asyncio.Event()
        self._utterance_due: asyncio.Event | None = None  # only with the closer task
        self._listeners: set[Callable[[b.BackendEvent | ToolOutputSent], None]] = set()
        self._answered: set[str] = set()  # tool calls that got their output
        self._turn: TextTurn | None = None
        self._end_requested: str | None = None
        self._last_input_at = 0.0
        self._last_cut: e.Heard | None = None
        self._history = history
        # The assistant's audio of the segment playing now, all of it (played or dropped
        # after a cut): how long the utterance was, to place the cut in its text.
        self._segment = ""
        self._segment_bytes = 0
        in_fmt = endpoint.input_format
        self._in_plan = build_plan(in_fmt, backend.input_format) if in_fmt else None
        self._passthrough_b64 = bool(
            self._in_plan is not None
            and self._in_plan.is_passthrough
            and backend.capabilities.b64_passthrough
        )
        # The user's audio path, chosen once (it runs 50 times a second per call): base64
        # straight to the backend when both sides allow, else decoded and converted; for a
        # backend that needs continuous input, every chunk also marks the time it came.
        self._user: e.UserSide = _UserSide(
            self._push,
            backend.push_audio_b64 if self._passthrough_b64 else self._audio_b64_decoded,
            self._on_endpoint_event,
        )
        if backend.capabilities.needs_continuous_input:
            self._user = _TimedUserSide(self._user, self)

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
                await self.endpoint.run(tg, self._user)
                tg.create_task(self._read_backend(), name=f"backend<{self.session_id}")
                if not self.backend.capabilities.final_transcripts:  # pieces close by silence
                    tg.create_task(self._close_utterances(), name=f"utterances:{self.session_id}")
                if self.backend.capabilities.needs_continuous_input:
                    tg.create_task(self._keep_input_flowing(), name=f"input:{self.session_id}")
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
        if self._tg is None:
            return
        if not self._ending:
            self.reason = reason
        self._ending = True
        self._add_task(_raise(ConversationEnded(reason)))

    async def hang_up_now(self, reason: str) -> None:
        """End now and hang up the user's side (a phone call is ended through REST). The
        session's reason is `reason`, even if the user's side closes first in reply."""
        if self._tg is None:
            return
        if not self._ending:
            self.reason = reason
        self._ending = True

        async def _end() -> None:
            await self.endpoint.hang_up(reason)
            raise ConversationEnded(reason)

        self._add_task(_end())

    async def wait_closed(self) -> None:
        await self._done.wait()

    @property
    def active(self) -> bool:
        return not self._done.is_set()

    async def _cleanup(self, crash: BaseException | None = None) -> None:
        self.ended_at = self._clock.wall()
        for utterance in self._utterances.flush():
            self._publish_utterance(utterance)
        if self._tools is not None:
            try:
                self._tools.cancel_session(self.session_id)
            except Exception:
                log.exception("%s: cancelling tool calls failed", self.session_id)
        try:
            await asyncio.wait_for(self.backend.close(), 5.0)
        except Exception as exc:  # a stuck backend must not keep the session alive
            log.warning("%s: backend close failed: %r", self.session_id, exc)
        await self.endpoint.close()
        self._notify(b.Closed(self.error))
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
        measuring = self._history is not None
        async for event in self.backend.events():
            if self._listeners:
                self._notify(event)
            if type(event) is b.AssistantAudio:  # the hot path: no dict lookup
                if measuring:
                    if event.segment != self._segment:
                        self._segment, self._segment_bytes = event.segment, 0
                    self._segment_bytes += len(event.audio)
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
            for utterance in self._utterances.close("assistant"):
                self._publish_utterance(utterance)

    def _on_idle(self, ev: b.AssistantIdle) -> None:
        self.turns.idle()
        self._progressed()

    def _progressed(self, _: object = None) -> None:
        if self._progress is not None:
            self._progress.set()

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
        self._last_cut = cut
        self._progressed()
        log.debug("%s barge-in: %s heard_ms=%s", self.session_id, cut.segment, cut.ms)
        self._publish(BargeIn(self.session_id, cut.segment, cut.ms))
        await self.backend.report_heard(cut.segment, cut.ms)

    def _on_transcript(self, ev: b.TranscriptSegment) -> None:
        closed = self._utterances.piece(
            ev.role, ev.text, final=ev.final, now=self._clock.monotonic()
        )
        for utterance in closed:
            self._publish_utterance(utterance)
        # Wake the closer only for pieces that can close for silence (no final will come).
        if not ev.final and self._utterance_due is not None:
            self._utterance_due.set()

    def _publish_utterance(self, utterance: Utterance) -> None:
        heard = audio_ms = None
        if utterance.role == "assistant" and self._last_cut is not None:
            cut, self._last_cut = self._last_cut, None
            heard = cut.ms
            if cut.segment == self._segment and self._segment_bytes:
                audio_ms = int(self.backend.output_format.ms_for_bytes(self._segment_bytes))
        self._publish(TranscriptLine(self.session_id, utterance.role, utterance.text, heard))
        if self._history is not None:
            self._history.utterance(utterance.role, utterance.text, heard, audio_ms)
        if utterance.role == "user" and self._tools is not None:
            self._tools.on_user_utterance(self, utterance.text)

    async def _close_utterances(self) -> None:
        """Close utterances of speakers whose backend never sends a final text."""
        self._utterance_due = due = asyncio.Event()
        while True:
            deadline = self._utterances.deadline()
            if deadline is None:
                due.clear()
                await due.wait()
                continue
            delay = deadline - self._clock.monotonic()
            if delay > 0:
                due.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(due.wait(), delay)
                continue
            for utterance in self._utterances.due(self._clock.monotonic()):
                self._publish_utterance(utterance)

    def _on_warning(self, ev: b.BackendWarning) -> None:
        self.stats.warnings += 1
        self.stats.last_warning = ev.message
        log.warning("%s: backend warning: %s", self.session_id, ev.message)
        self._publish(SessionWarning(self.session_id, ev.message, ev.code))

    def _on_closed(self, ev: b.Closed) -> None:
        if ev.error:
            self.error = ev.error
        raise ConversationEnded(f"backend closed: {ev.error}" if ev.error else "backend closed")

    # === user -> backend ===================================================================
    def _on_endpoint_event(self, event: e.EndpointEvent) -> Awaitable[None] | None:
        return _ENDPOINT_HANDLERS.get(type(event), _ignore)(self, event)

    async def _audio_b64_decoded(self, audio_b64: str) -> None:
        """User audio as base64 when it cannot pass through: decode, convert, push."""
        try:
            audio = binascii.a2b_base64(audio_b64)
        except (binascii.Error, ValueError):
            self.stats.bad_input += 1  # a bad frame never ends a call
            return
        await self._push(audio)

    async def _push(self, audio: bytes) -> None:
        plan = self._in_plan
        if plan is not None and not plan.is_passthrough:
            audio = plan.convert(audio)
            if not audio:
                return
        await self.backend.push_audio(audio)

    async def _on_input_gap(self, ev: e.InputGap) -> None:
        """The user's audio stalled: the model hears the missing time as silence, so its
        turn detection still sees the pause."""
        fmt = self.endpoint.input_format
        if fmt is None:
            return
        self.stats.silence_filled_ms += ev.ms
        silence = _silence(fmt, ev.ms)
        if self._passthrough_b64:
            await self.backend.push_audio_b64(binascii.b2a_base64(silence, newline=False).decode())
        else:
            await self._push(silence)

    async def _keep_input_flowing(self) -> None:
        """For a backend whose timeline only moves with input audio: silence whenever the
        endpoint sends nothing (a text session, a stalled phone line)."""
        frame = _silence(self.backend.input_format, INPUT_FRAME_MS)
        frame_s = INPUT_FRAME_MS / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at + frame_s, loop.time() - frame_s)
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self._clock.monotonic() - self._last_input_at >= INPUT_STALL_S:
                self.stats.silence_filled_ms += INPUT_FRAME_MS
                await self.backend.push_audio(frame)

    async def _on_dtmf(self, ev: e.Dtmf) -> None:
        self.stats.dtmf += 1
        log.debug("%s dtmf %s", self.session_id, ev.digit)
        self._publish(DtmfPressed(self.session_id, ev.digit))
        await self.backend.add_note("context", f"The caller pressed {ev.digit}.")

    def _on_hung_up(self, ev: e.HungUp) -> None:
        raise ConversationEnded(ev.reason)

    # === tools (the ToolSession protocol) ==================================================
    def _on_tool_request(self, req: ToolRequest) -> None:
        self.stats.tool_calls += 1
        self._publish(ToolRequested(self.session_id, req.call_id, req.name))
        if self._history is not None:
            self._history.tool_call(req.call_id, req.name, req.arguments)
        assert self._tg is not None
        if self._tool_jobs >= self._max_tool_calls:
            # Bounded like every queue of a call: a model asking for calls faster than they
            # finish gets an answer at once instead of an ever longer line of tasks.
            message = f"too many tool calls at once (at most {self._max_tool_calls}); try again"
            self._tg.create_task(self._answer_error(req, message), name=f"tool-refused:{req.name}")
            return
        self._tool_jobs += 1
        self._tg.create_task(self._tool_job(req), name=f"tool:{req.name}")

    async def _tool_job(self, req: ToolRequest) -> None:
        """Run one tool call to its output. Whatever goes wrong, the model is answered."""
        _in_tool_job.set(True)  # an end requested by this call waits for its output
        try:
            await self._run_tool(req)
        finally:
            self._tool_jobs -= 1
            if self._end_requested is not None and not self._ending:
                self._begin_end(self._end_requested)

    async def _run_tool(self, req: ToolRequest) -> None:
        if self._tools is None:
            if req.name == "end_call":  # without a tool layer, a call can still be ended
                await self.send_tool_result(req.call_id, '{"ok": true}', respond=False)
                self.request_end("end_call")
            else:
                await self._answer_error(req, f"tool {req.name!r} is not available here")
            return
        try:
            async with asyncio.timeout(self._tools.deadline_s(req)):
                await self._tools.handle(req, self)
        except TimeoutError:
            log.warning("%s: tool %s did not finish", self.session_id, req.name)
            await self._answer_error(req, f"{req.name} did not finish in time; it may not be done")
        except Exception as exc:
            log.exception("%s: tool %s failed", self.session_id, req.name)
            await self._answer_error(
                req, f"{req.name} failed: internal error ({type(exc).__name__})"
            )
        else:
            if req.call_id not in self._answered:
                await self._answer_error(req, f"{req.name} returned no result")

    async def _answer_error(self, req: ToolRequest, message: str) -> None:
        if req.call_id not in self._answered:
            await self.send_tool_result(req.call_id, _ERROR_OUTPUT.format(json.dumps(message)))

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """The call's one output; with `respond`, the model answers from it."""
        if call_id in self._answered:
            log.warning("%s: second output for %s dropped", self.session_id, call_id)
            return
        self._answered.add(call_id)
        if self._history is not None:
            self._history.tool_result(call_id, output)
        await self.backend.submit_tool_result(call_id, output, continue_conversation=respond)
        self._notify(ToolOutputSent(call_id, respond))

    async def notify_model(self, text: str) -> None:
        """Something the user should hear about ("waiting for approval", "still running"):
        the backend makes the model say so when it is quiet, so there is no dead air."""
        await self.backend.add_note("status", text)

    def request_end(self, reason: str = "end_call") -> None:
        """End politely: let the goodbye be said and heard, then hang up. Returns at once.
        Asked from inside a tool call (end_call), the end starts once that call's output
        has been sent."""
        if self._ending or self._tg is None:
            return
        if _in_tool_job.get():
            self._end_requested = self._end_requested or reason
            return
        self._begin_end(reason)

    def _begin_end(self, reason: str) -> None:
        if self._ending or self._tg is None:
            return
        self._ending = True
        self._add_task(self._end_after_goodbye(reason), name="end_call")

    def _add_task(self, work: Coroutine[Any, Any, None], name: str | None = None) -> None:
        """Run `work` in the session's task group, unless the group is already ending
        (something else ended the session first): then there is nothing left to do."""
        try:
            assert self._tg is not None
            self._tg.create_task(work, name=name)
        except RuntimeError:
            work.close()

    async def _end_after_goodbye(self, reason: str) -> None:
        progress = self._progress = asyncio.Event()
        try:
            async with asyncio.timeout(self._end_limit_s):
                # The goodbye is still being said, or still being heard.
                while self.turns.busy or self.endpoint.playing:
                    progress.clear()
                    await progress.wait()
        except TimeoutError:
            log.warning("%s: the goodbye did not finish playing", self.session_id)
        # Ours, even when the user's side closes first in reply to the hang-up.
        self.reason = self.reason or reason
        await self.endpoint.hang_up(reason)
        raise ConversationEnded(reason)

    # === text turns ========================================================================
    def say(self, text: str, *, audio: bool = False) -> AsyncIterator[dict[str, Any]]:
        """A typed user turn. Raises at once (SessionClosed, TurnInProgress: one turn at a
        time); the returned iterator sends the turn and yields the reply's pieces (see
        `TextTurn`), ending with {"done"}. Call `abandon_turn()` if the reader goes away
        before that, so the reply is stopped and cannot run into the next turn."""
        if not self.active:
            raise SessionClosed("the session has ended")
        if self._turn is not None:
            raise TurnInProgress("a text turn is already running in this session")
        until_idle = not self.backend.capabilities.turn_based
        turn = self._turn = TextTurn(audio=audio, until_idle=until_idle)
        return self._run_turn(turn, text)

    async def _run_turn(self, turn: TextTurn, text: str) -> AsyncIterator[dict[str, Any]]:
        # Bounded: a reader that falls `_max_turn_backlog` events behind (a client that stopped
        # reading a reply with audio) gets a last piece saying so, and the reply is stopped.
        queue: asyncio.Queue[b.BackendEvent | ToolOutputSent | None] = asyncio.Queue()
        limit = self._max_turn_backlog

        def listen(event: b.BackendEvent | ToolOutputSent) -> None:
            if queue.qsize() < limit:
                queue.put_nowait(event)
                return
            # The first event too many, and the last this turn takes: the reply is stopped
            # now, not when (if ever) the reader gets this far.
            self._listeners.discard(listen)
            queue.put_nowait(None)
            if self._tg is not None and (turn.running or self.turns.busy):
                self._tg.create_task(self._stop_reply(), name=f"turn-overflow:{self.session_id}")

        self._listeners.add(listen)
        try:
            if self._history is not None:
                self._history.typed(text)
            await self.backend.send_user_text(text)
            while not turn.done:
                event = await queue.get()
                if event is None:
                    turn.done = True  # already stopped: nothing for abandon_turn to do
                    yield {
                        "done": True,
                        "transcript": "".join(turn.parts),
                        "status": "incomplete",
                        "error": f"the reader fell {limit} events behind; the reply was stopped",
                    }
                    return
                for piece in turn.feed(event):
                    yield piece
        finally:
            self._listeners.discard(listen)
            if self._turn is turn:
                await self.abandon_turn()

    async def _stop_reply(self) -> None:
        with contextlib.suppress(Exception):  # the session may be ending under us
            await self.backend.report_heard(None, None)

    async def abandon_turn(self) -> None:
        """The text turn's reader went away: stop its reply (nothing more was heard), so it
        cannot run into the next turn. Idempotent; nothing to do once the turn is done."""
        turn, self._turn = self._turn, None
        if turn is None or turn.done:
            return
        turn.done = True
        if (turn.running or self.turns.busy) and self.active:
            with contextlib.suppress(Exception):
                await self.backend.report_heard(None, None)

    async def end_user_turn(self) -> bool:
        """Push-to-talk release; False when the backend detects turns itself."""
        return await self.backend.end_user_turn()

    # === helpers ===========================================================================
    def _notify(self, event: b.BackendEvent | ToolOutputSent) -> None:
        for listener in list(self._listeners):
            listener(event)

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


@dataclass(frozen=True, slots=True)
class _UserSide:
    """What the session gives its endpoint: bound paths chosen once, no branching per frame."""

    audio: Callable[[bytes], Awaitable[None]]
    audio_b64: Callable[[str], Awaitable[None]]
    event: Callable[[e.EndpointEvent], Awaitable[None] | None]


class _TimedUserSide:
    """Also notes when user audio last came (the silence pump fills the gaps)."""

    __slots__ = ("_inner", "_session", "event")

    def __init__(self, inner: e.UserSide, session: ConversationSession) -> None:
        self._inner = inner
        self._session = session
        self.event = inner.event

    async def audio(self, audio: bytes) -> None:
        self._session._last_input_at = self._session._clock.monotonic()
        await self._inner.audio(audio)

    async def audio_b64(self, audio_b64: str) -> None:
        self._session._last_input_at = self._session._clock.monotonic()
        await self._inner.audio_b64(audio_b64)


def _caller(ctx: CallContext) -> str:
    """Who is on the other side, for the log: name (number, role)."""
    details = [ctx.caller_id] if ctx.caller_name and ctx.caller_id else []
    return f"{ctx.caller_name or ctx.caller_id or 'unknown'} ({', '.join([*details, ctx.role])})"


def _silence(fmt: AudioFormat, ms: int) -> bytes:
    return bytes([silence_byte(fmt)]) * fmt.bytes_for_ms(ms)


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
    b.TranscriptSegment: _C._on_transcript,
    ToolRequest: _C._on_tool_request,
    b.BackendWarning: _C._on_warning,
    b.Closed: _C._on_closed,
}
_ENDPOINT_HANDLERS: dict[type[Any], _Handler] = {
    e.InputGap: _C._on_input_gap,
    e.Dtmf: _C._on_dtmf,
    e.Heard: _ignore,
    e.Drained: _C._progressed,
    e.HungUp: _C._on_hung_up,
}


async def _raise(exc: BaseException) -> None:
    raise exc


def _first_reason(group: BaseExceptionGroup[ConversationEnded]) -> str:
    for exc in group.exceptions:
        if isinstance(exc, ConversationEnded):
            return exc.reason
        if isinstance(exc, BaseExceptionGroup):
            return _first_reason(exc)
    return "ended"
