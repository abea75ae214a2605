"""`CallSession`: one phone call (Twilio Media Streams) bridged to one `VoiceBackend`.

The session owns an `asyncio.TaskGroup` with three long-lived tasks (the Twilio reader, the
backend event reader, the outbound pacer) plus one task per tool call. Any of them ends the
call by raising `CallEnded(reason)`; an unexpected exception ends only this call, with the
exception as the logged reason. Cleanup (backend closed, tool calls cancelled, buffers
released, the call recorded) runs in `run()`'s `finally`, whatever ended the call.

Barge-in is a direct call on the session from the backend reader (reference
twilio-media-streams.md §4.4, openai-realtime.md §5.2): `clear` goes to Twilio at once, the
outbound queue is dropped by generation, the truncation point comes from mark echoes, and
late audio of the interrupted response is dropped. It never waits behind queued audio.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from foreman.audio.convert import build_plan
from foreman.audio.formats import PCMU_8K
from foreman.backends.base import (
    AudioDone,
    AudioOut,
    BackendWarning,
    Closed,
    Ready,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
    ToolRequest,
    Transcript,
    VoiceBackend,
)
from foreman.clock import Clock, SystemClock
from foreman.config import TwilioConfig
from foreman.exceptions import SessionClosed
from foreman.protocols.twilio.messages import (
    BadMessage,
    Connected,
    Dtmf,
    MarkEcho,
    Media,
    Start,
    Stop,
    Unknown,
)
from foreman.protocols.twilio.stream import TwilioStream
from foreman.session.bus import EventBus
from foreman.session.call_playback import Playback
from foreman.session.call_types import (
    CallEnded,
    CallInfo,
    CallStats,
    Dispatcher,
    Hangup,
    TwilioTransport,
)

__all__ = [
    "CallEnded",
    "CallInfo",
    "CallSession",
    "CallStats",
    "Dispatcher",
    "Hangup",
    "TwilioTransport",
]

log = logging.getLogger("foreman.call")

MAX_BAD_MESSAGES = 200  # garbage is ignored (scenario 10) but a flood of it ends the call
END_CALL_PLAYOUT_LIMIT_S = 30.0  # a goodbye never keeps a line open longer than this
MAX_GAP_FILL_MS = 10_000  # agents-js caps its padding at 10 s (reference §4.5)
SILENCE_ULAW = b"\xff"


class CallSession:
    """One call. Build it after the stream's `start`, then `await run()` until the call ends.

    Implements the tool dispatcher's `ToolSession` protocol: `ctx`, `send_tool_result`,
    `notify_model`, `request_end`.
    """

    def __init__(
        self,
        info: CallInfo,
        stream: TwilioStream,
        transport: TwilioTransport,
        backend: VoiceBackend,
        *,
        config: TwilioConfig,
        bus: EventBus | None = None,
        dispatcher: Dispatcher | None = None,
        rest: Hangup | None = None,
        clock: Clock | None = None,
        on_end: Callable[[CallSession, str], Any] | None = None,
        max_chunk_ms: int = 100,
    ) -> None:
        self.info = info
        self.ctx = info.ctx
        self.session_id = info.ctx.session_id
        self._stream = stream
        self._transport = transport
        self._backend = backend
        self._bus = bus or EventBus()
        self._dispatcher = dispatcher
        self._rest = rest
        self._clock = clock or SystemClock()
        self._on_end = on_end
        self.stats = CallStats()
        self.reason: str | None = None
        self.started_at = self._clock.wall()
        self.ended_at: float | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._ending = False
        self._wake = asyncio.Event()  # pacer: audio was queued
        self._idle = asyncio.Event()  # end_call: playback state changed
        self._done = asyncio.Event()

        # Audio paths (reference §4.1: µ-law passthrough needs no codec at all).
        self._in_plan = build_plan(PCMU_8K, backend.input_format)
        self._push_b64: Callable[[str], Awaitable[None]] | None = (
            getattr(backend, "push_audio_b64", None) if self._in_plan.is_passthrough else None
        )
        # One mark per chunk: truncation is exact to within one chunk (§2.4).
        self._play = Playback(
            backend.output_format,
            max_lead_ms=config.max_lead_ms,
            max_chunk_frames=max(1, max_chunk_ms // 20),
        )

        self._twilio_handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            Media: self._on_media,
            MarkEcho: self._on_mark,
            Dtmf: self._on_dtmf,
            Stop: self._on_stop,
            Start: self._on_extra_start,
            Connected: self._ignore,
            Unknown: self._on_unknown,
            BadMessage: self._on_bad,
        }
        self._backend_handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            Ready: self._on_ready,
            AudioOut: self._on_audio,
            AudioDone: self._on_audio_done,
            SpeechStarted: self._on_speech_started,
            SpeechStopped: self._on_speech_stopped,
            Transcript: self._on_transcript,
            ToolRequest: self._on_tool_request,
            ResponseStarted: self._on_response_started,
            ResponseDone: self._on_response_done,
            BackendWarning: self._on_warning,
            Closed: self._on_closed,
        }

    # === lifecycle =========================================================================
    async def run(self) -> str:
        """Bridge until the call ends; returns the reason. Never raises for call errors."""
        reason = "ended"
        self._publish("call.started", direction=self.info.direction, purpose=self.info.purpose)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._read_twilio(), name=f"twilio<{self.info.call_sid}")
                tg.create_task(self._read_backend(), name=f"backend<{self.info.call_sid}")
                tg.create_task(self._pace(), name=f"pacer>{self.info.call_sid}")
        except* CallEnded as group:
            reason = _first_reason(group)
        except* SessionClosed:
            reason = "caller hung up (socket closed)"
        except* Exception as group:
            exc = group.exceptions[0]
            reason = f"error: {type(exc).__name__}: {exc}"
            log.error("= call %s crashed: %s", self.info.call_sid, reason, exc_info=exc)
        finally:
            self._tg = None
            if self.reason is None:
                self.reason = reason
            await self._cleanup()
        return self.reason

    def request_end(self, reason: str = "end_call") -> None:
        """End the call politely: let the goodbye finish playing, hang up, close the stream."""
        if self._ending or self._tg is None:
            return
        self._ending = True
        self._tg.create_task(self._finish_after_playout(reason), name="end_call")

    async def hangup_now(self, reason: str = "ended by server") -> None:
        """End the call at once (API, shutdown): hang up through REST, no goodbye."""
        if self._tg is None:
            return
        self._ending = True

        async def _end() -> None:
            await self._rest_hangup()
            raise CallEnded(reason)

        self._tg.create_task(_end())

    async def wait_closed(self) -> None:
        await self._done.wait()

    async def _cleanup(self) -> None:
        self.ended_at = self._clock.wall()
        self._play.release(self._clock.monotonic())
        if self._dispatcher is not None:
            try:
                res = self._dispatcher.cancel_session(self.session_id)
                if inspect.isawaitable(res):
                    await res
            except Exception:
                log.exception("= call %s: cancelling tool calls failed", self.info.call_sid)
        try:
            await asyncio.wait_for(self._backend.close(), 5.0)
        except Exception as exc:  # a stuck backend must not keep the call alive
            log.warning("= call %s: backend close failed: %r", self.info.call_sid, exc)
        await self._transport.close(1000, "call ended")
        log.info("= call %s ended: %s", self.info.call_sid, self.reason)
        self._publish("call.ended", reason=self.reason, stats=self.stats.as_dict())
        if self._on_end is not None:
            try:
                res = self._on_end(self, self.reason or "ended")
                if inspect.isawaitable(res):
                    await res
            except Exception:
                log.exception("= call %s: on_end hook failed", self.info.call_sid)
        self._done.set()

    # === Twilio side =======================================================================
    async def _read_twilio(self) -> None:
        receive = self._transport.receive
        handlers = self._twilio_handlers
        while True:
            frame = await receive()
            if frame is None:
                raise CallEnded("caller hung up (socket closed)")
            for event in self._stream.receive(frame):
                await handlers.get(type(event), self._on_unknown)(event)

    async def _on_media(self, ev: Media) -> None:
        self.stats.media_in += 1
        if ev.gap_ms > 0:
            await self._fill_gap(ev.gap_ms)
        if self._push_b64 is not None:  # passthrough: the base64 text goes on untouched
            await self._push_b64(ev.payload_b64)
            return
        audio = base64.b64decode(ev.payload_b64)
        if not self._in_plan.is_passthrough:
            audio = self._in_plan.convert(audio)
            if not audio:
                return
        await self._backend.push_audio(audio)

    async def _fill_gap(self, gap_ms: int) -> None:
        """Media stalled (timestamps jumped, §6.4 scenario 11): give the model the missing
        time as silence so its VAD still sees the pause (capped, reference §4.5)."""
        gap_ms = min(gap_ms, MAX_GAP_FILL_MS)
        self.stats.gap_filled_ms += gap_ms
        silence = SILENCE_ULAW * (gap_ms * 8)
        if self._push_b64 is not None:
            await self._push_b64(base64.b64encode(silence).decode("ascii"))
            return
        audio = silence if self._in_plan.is_passthrough else self._in_plan.convert(silence)
        if audio:
            await self._backend.push_audio(audio)

    async def _on_mark(self, ev: MarkEcho) -> None:
        if self._play.mark_echo(ev.name):
            self.stats.marks_played += 1
        else:
            self.stats.marks_dropped += 1  # echoed because of a clear, or unknown
        self._idle.set()

    async def _on_dtmf(self, ev: Dtmf) -> None:
        self.stats.dtmf += 1
        log.info("< call %s dtmf %s", self.info.call_sid, ev.digit)
        self._publish("call.dtmf", digit=ev.digit)
        await self._backend.add_context("user", f"The caller pressed {ev.digit}.")

    async def _on_stop(self, ev: Stop) -> None:
        raise CallEnded("caller hung up")

    async def _on_extra_start(self, ev: Start) -> None:
        self._bad("second start message")

    async def _on_unknown(self, ev: Any) -> None:
        log.debug("< call %s: ignored %r", self.info.call_sid, ev)

    async def _ignore(self, ev: Any) -> None:
        return None

    async def _on_bad(self, ev: BadMessage) -> None:
        self._bad(str(getattr(ev, "reason", None) or ev))

    def _bad(self, reason: str) -> None:
        self.stats.bad_messages += 1
        if self.stats.bad_messages == 1:
            log.warning("< call %s: bad message ignored: %s", self.info.call_sid, reason)
        if self.stats.bad_messages > MAX_BAD_MESSAGES:
            raise CallEnded(f"too many bad messages from Twilio (last: {reason})")

    # === backend side ======================================================================
    async def _read_backend(self) -> None:
        handlers = self._backend_handlers
        async for event in self._backend.events():
            await handlers.get(type(event), self._on_unknown)(event)
        raise CallEnded("backend closed")

    async def _on_ready(self, ev: Ready) -> None:
        self._publish("call.ready", model=ev.model, backend_session=ev.session_id)

    async def _on_audio(self, ev: AudioOut) -> None:
        if self._play.audio(ev):
            self._wake.set()
        else:
            self.stats.late_audio_dropped += 1  # scenario 4: late audio after a barge-in

    async def _on_audio_done(self, ev: AudioDone) -> None:
        self._play.audio_done(ev)
        self._wake.set()

    async def _on_speech_started(self, ev: SpeechStarted) -> None:
        self._publish("call.speech_started", audio_start_ms=ev.audio_start_ms)
        await self.barge_in()

    async def _on_speech_stopped(self, ev: SpeechStopped) -> None:
        self._publish("call.speech_stopped", audio_end_ms=ev.audio_end_ms)

    async def _on_transcript(self, ev: Transcript) -> None:
        if not ev.final:
            return  # deltas are many; the final text carries the whole turn
        self._publish("call.transcript", role=ev.role, text=ev.text, item_id=ev.item_id)
        if ev.role == "user" and self._dispatcher is not None:
            res = self._dispatcher.on_user_transcript(self, ev.text)
            if inspect.isawaitable(res):
                await res

    async def _on_tool_request(self, ev: ToolRequest) -> None:
        self.stats.tool_calls += 1
        self._publish("call.tool_request", name=ev.name, call_id=ev.call_id)
        assert self._tg is not None
        self._tg.create_task(self._run_tool(ev), name=f"tool:{ev.name}")

    async def _run_tool(self, req: ToolRequest) -> None:
        if self._dispatcher is not None:
            await self._dispatcher.handle(req, self)
            return
        # No dispatcher wired: the phone bridge still honours end_call on its own.
        if req.name == "end_call":
            await self.send_tool_result(req.call_id, json.dumps({"ok": True}), respond=False)
            self.request_end("end_call")
        else:
            out = json.dumps({"error": f"tool {req.name!r} is not available on this call"})
            await self.send_tool_result(req.call_id, out)

    async def _on_response_started(self, ev: ResponseStarted) -> None:
        self._play.response_started(ev.response_id)

    async def _on_response_done(self, ev: ResponseDone) -> None:
        self._play.response_done(ev.response_id)
        self._idle.set()

    async def _on_warning(self, ev: BackendWarning) -> None:
        self.stats.warnings += 1
        self.stats.last_warning = ev.message
        log.warning("< call %s backend warning: %s", self.info.call_sid, ev.message)

    async def _on_closed(self, ev: Closed) -> None:
        raise CallEnded(f"backend closed: {ev.error}" if ev.error else "backend closed")

    # === barge-in ==========================================================================
    async def barge_in(self) -> None:
        """The caller talks over the assistant: stop playback now and fix the model's memory.

        Reference §4.4. Nothing queued or playing -> nothing to do (no truncate, no cancel).
        """
        # Bookkeeping first, with no await: what was heard is fixed at this instant.
        cut = self._play.interrupt(self._clock.monotonic())
        if cut is None:
            return
        self.stats.barge_ins += 1
        # Then the urgent signal, straight onto the socket (never behind queued audio).
        await self._transport.send_text(self._stream.clear())
        log.info(
            "= call %s barge-in: item=%s heard_ms=%s cancel=%s",
            self.info.call_sid,
            cut.item_id,
            cut.heard_ms,
            cut.cancel,
        )
        self._publish(
            "call.barge_in", item_id=cut.item_id, heard_ms=cut.heard_ms, cancel=cut.cancel
        )
        if cut.item_id is not None or cut.cancel:
            await self._backend.interrupt(cut.item_id, cut.heard_ms, cancel=cut.cancel)
        self._idle.set()

    # === outbound pacer ====================================================================
    async def _pace(self) -> None:
        play = self._play
        out = play.out
        clock = self._clock
        send = self._transport.send_text
        stream = self._stream
        while True:
            delay = out.delay(clock.monotonic())
            if delay is None:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            chunk = play.next_chunk(clock.monotonic())
            if chunk is None:
                continue
            await send(stream.media_bytes(chunk.payload))
            self.stats.frames_out += len(chunk.payload) // out.frame_bytes
            mark = play.chunk_sent(chunk)
            if mark is None:
                continue  # a barge-in cleared this audio while it was being sent
            await send(stream.mark(mark.name))
            self.stats.marks_sent += 1

    # === ToolSession protocol ==============================================================
    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """Give a tool's output to the model (and, with `respond`, ask it to speak)."""
        await self._backend.send_tool_result(call_id, output, respond=respond)

    async def notify_model(self, text: str) -> None:
        """Tell the model something it must know (e.g. an approval is still pending) and,
        when it is not speaking, let it say so (no dead air on the line)."""
        await self._backend.add_context("system", text)
        if not self._play.active_responses:
            await self._backend.request_response()

    # === end_call ==========================================================================
    async def _finish_after_playout(self, reason: str) -> None:
        """Reference §1.3: goodbye audio, its last mark echoed, then REST `Status=completed`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + END_CALL_PLAYOUT_LIMIT_S
        while not self._play.idle:
            self._idle.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("= call %s: goodbye did not finish playing", self.info.call_sid)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), remaining)
        await self._rest_hangup()
        raise CallEnded(reason)

    async def _rest_hangup(self) -> None:
        if self._rest is None:
            log.info(
                "= call %s: no Twilio REST client; closing the stream only", self.info.call_sid
            )
            return
        try:
            await self._rest.hangup(self.info.call_sid)
        except Exception as exc:  # the stream is closed anyway; Twilio then ends the call
            log.warning("> call %s: REST hang-up failed: %r", self.info.call_sid, exc)

    # === helpers ===========================================================================
    def _publish(self, kind: str, **data: Any) -> None:
        self._bus.publish(kind, call_sid=self.info.call_sid, session_id=self.session_id, **data)

    def status(self) -> dict[str, Any]:
        """Debug view of the call (safe to show)."""
        return {
            "call_sid": self.info.call_sid,
            "stream_sid": self.info.stream_sid,
            "direction": self.info.direction,
            "from": self.info.from_,
            "to": self.info.to,
            "role": str(self.ctx.role),
            "verified": self.ctx.verified,
            "started_at": self.started_at,
            "stats": self.stats.as_dict(),
            "queued_ms": self._play.out.queued_bytes // 8,
        }


def _first_reason(group: BaseExceptionGroup[CallEnded]) -> str:
    for exc in group.exceptions:
        if isinstance(exc, CallEnded):
            return exc.reason
        if isinstance(exc, BaseExceptionGroup):
            return _first_reason(exc)
    return "ended"
