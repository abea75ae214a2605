"""The OpenAI GPT-Live backend over WebSocket (`/v1/live/sessions`).

GPT-Live is one continuous, full-duplex timeline: the voice model listens while it talks,
yields by itself when the user talks over it, and has no tools; it delegates work to a
hosted Responses model that holds Foreman's tools. So this backend declares
`server_barge_in` (never `UserSpeechStarted`; `report_heard` has nothing to cancel or
truncate), `needs_continuous_input` (the session keeps silence flowing, since a gap freezes
the timeline) and not `turn_based` (silence flows between replies).

Every protocol decision lives in the sans-I/O `protocols.live.LiveClient` (phases,
delegation bookkeeping, the outbox); replies and idleness are inferred from the output
track by `live_replies.TrackReplies`. This class only moves frames and translates:

* tool requests come from completed function calls in delegation envelopes;
  `submit_tool_result` answers each pending call and continues the delegation once;
* notes: an instruction or a status the user should hear -> `session.instructions.append`,
  silent context -> `session.thinking.append` (both with `delegation_id: null`);
* a typed turn -> a user message for the Responses backend, then `response.create`;
* close -> `session.close`, then the frames until `session.closed` (the only proof that
  the session was finalised, with the final usage in seconds).

The session may change under a call (`[realtime.recovery]`, `[live] rollover_margin_s`);
a new socket is a new session, so the conversation is carried by the client:

* **reconnect** (`live_recovery`): when the socket drops (or the service closes the
  session), `events()` keeps going: the reply that ran ends `incomplete`, a new session is
  opened with backoff and full jitter inside a total window (a fatal answer such as a bad
  key or an unknown model stops at once), seeded with the instructions and a digest of the
  conversation (`protocols.live.carryover`), fed the newest 200 ms of the caller's held
  audio, and asked to carry on (or to ask the caller to repeat what the drop lost).
  Delegated calls still waiting for their output are answered on the new session, as a
  note, when the tool flow delivers it (exactly once).
* **rollover** and the **watchdog** (`live_supervisor`, started by `run`): a margin before
  `expires_at` a standby session is opened; it takes over at the first pause. A track that
  stops arriving is a stalled session: it is reconnected, then given up on.

Reference: https://developers.openai.com/api/docs/guides/live,
https://developers.openai.com/api/docs/guides/live-delegation.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from foreman.audio.formats import AudioFormat
from foreman.backends import interface as b
from foreman.backends import live_recovery as recovery
from foreman.backends.live_open import close_code, open_session
from foreman.backends.live_replies import TrackReplies
from foreman.config import LiveConfig, RealtimeConfig
from foreman.exceptions import AudioFormatError, BackendError, RemoteProtocolError
from foreman.io.realtime_ws import endpoint_host, key_allowed, open_realtime
from foreman.policy.backoff import Backoff, RetryWindow
from foreman.policy.watchdog import Watchdog
from foreman.protocols.live import events as ev
from foreman.protocols.live.carryover import (
    CarriedCall,
    CarriedCalls,
    ConversationDigest,
    result_note,
)
from foreman.protocols.live.client import LiveClient, LivePhase
from foreman.protocols.live.client_events import AppendKind
from foreman.protocols.live.delegations import DelegationDone, FunctionCallRequested
from foreman.protocols.live.lifecycle import (
    RESUME_AUDIO_MS,
    HeldInput,
    RolloverSchedule,
    reconnect_worthwhile,
)
from foreman.protocols.live.session_config import LiveSessionOptions, build_session_config
from foreman.tools.request import ToolRequest

log = logging.getLogger(__name__)

NAME: Final = "openai-live"
USD_PER_SECOND: Final = 0.05 / 60  # voice time, billed per second (backend tokens apart)
CLOSE_DRAIN_S: Final = 3.0  # waiting for session.closed after session.close
STOP_TALKING: Final = "Stop talking now: the user is no longer listening. Say nothing more."


class OpenAILiveBackend:
    """One GPT-Live conversation. `start()`, `run(tg)`, then iterate `events()` in one task."""

    capabilities = b.Capabilities(
        server_barge_in=True,
        turn_based=False,
        needs_continuous_input=True,
        b64_passthrough=True,
        final_transcripts=False,
    )

    def __init__(
        self,
        options: b.BackendOptions,
        config: RealtimeConfig,
        live: LiveConfig,
        *,
        connector: Callable[..., Any] = open_realtime,
    ) -> None:
        self.options = options
        self.input_format: AudioFormat = options.input_format
        self.output_format: AudioFormat = options.output_format
        self._config = config
        self.recovery = rc = config.recovery
        self._connector = connector
        # A setup problem is reported by start(), where every caller expects a BackendError.
        self._setup_error: str | None = None
        self._session_options: LiveSessionOptions | None = None
        session_config: dict[str, Any] = {}
        if options.input_format != options.output_format:
            self._setup_error = "GPT-Live uses one audio format for both directions"
        else:
            self._session_options = LiveSessionOptions(
                model=options.model,
                instructions=options.instructions,
                audio_format=options.input_format,
                voice=options.voice,
                backend_model=live.backend_model,
                backend_instructions=live.backend_instructions,
                tools=options.tools,
                history=[(role, text) for role, text in options.history],
                parallel_tool_calls=live.parallel_tool_calls,
                acknowledgement_delay_ms=live.acknowledgement_delay_ms,
            )
            try:
                session_config = build_session_config(self._session_options)
            except AudioFormatError as exc:
                self._setup_error = str(exc)
        self._live = LiveClient(session_config)
        self._replies = TrackReplies(self.output_format)
        self._ws: ClientConnection | None = None  # None while reconnecting: audio is held
        self._closing = False
        self._closed = False
        self._error: str | None = None
        self._pending: list[b.BackendEvent] = []  # caused by commands; emitted with the next frame
        self.counters: dict[str, int] = {"heard_reports": 0, "bad_frames": 0, "warnings": 0}
        # --- recovery state ---
        self.digest = ConversationDigest(rc.replay_max_items, tuple(options.history))
        self.carried = CarriedCalls()  # calls of a lost session, owed an output
        self._calls: dict[str, CarriedCall] = {}  # calls requested on the current session
        held_ms = min(RESUME_AUDIO_MS, int(rc.buffer_audio_s * 1000))
        self.held = HeldInput(self.input_format, resume_ms=held_ms)
        backoff = Backoff(rc.backoff_initial_s, rc.backoff_max_s)
        self._window = RetryWindow(backoff, rc.reconnect_window_s)
        self.restored_at = -float("inf")  # monotonic: when a reconnect last restored a session
        self.session_started_at = 0.0  # monotonic: when the current session took over
        self.schedule = RolloverSchedule(live.rollover_margin_s)
        # A continuous track never "ends a reply" for the ladder: nudges make no sense here.
        self.watchdog = Watchdog(rc.response_timeout_s, rc.stall_timeout_s, nudges=0)
        self.standby: recovery.Standby | None = None  # a rollover's next session
        self.forced: str | None = None  # why the supervisor took the connection down
        self.ended_by_service: str | None = None  # session.closed we did not ask for
        self.cut_reply = False  # a drop cut the assistant short
        self.owed: list[tuple[str, str]] = []  # commands made while disconnected, in order
        self.user_voice_at = 0.0  # monotonic: the caller's last loud audio (near a rollover)
        self.usage_before = 0.0  # seconds of the sessions before this one
        self.recovery_counters: dict[str, int] = dict.fromkeys(
            ("reconnects", "rollovers", "watchdog_reconnects"), 0
        )

    # --- sessions ------------------------------------------------------------------------
    def new_client(self) -> LiveClient:
        """A client for the next session, seeded with the conversation so far."""
        assert self._session_options is not None
        return recovery.next_client(self._session_options, self.digest)

    async def open_session(self, live: LiveClient) -> ClientConnection:
        """Connect and start `live` (start, reconnect, rollover). Raises BackendError."""
        opts = self.options
        api_key = ""
        if self._config.api_key and key_allowed(opts.endpoint, self._config.api_key_hosts):
            api_key = self._config.api_key.get_secret_value()
        rc = self.recovery
        connect = functools.partial(
            self._connector,
            opts.endpoint,
            None,
            api_key,
            timeout_s=self._config.connect_timeout_s,
            ping_interval_s=rc.ping_interval_s,
            ping_timeout_s=rc.ping_timeout_s,
        )
        return await open_session(
            connect,
            live,
            endpoint=opts.endpoint,
            timeout_s=self._config.connect_timeout_s,
            audio_format=self.input_format,
        )

    def use(self, ws: ClientConnection, live: LiveClient) -> None:
        """Make `ws` the live connection (no await: commands see one or the other)."""
        if live is not self._live:
            self.usage_before += self._live.usage_seconds  # the session it replaces
        self._ws, self._live = ws, live
        now = time.monotonic()
        self.session_started_at = now
        self.watchdog.reset(now)
        if not self.schedule.started(live.expires_at, time.time()):
            log.warning("session %s expires within rollover_margin_s", live.session_id)

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def reconnecting(self) -> bool:
        return self._ws is None and self._live.phase is LivePhase.ACTIVE and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._setup_error is not None:
            raise BackendError(self._setup_error, code="format")
        ws = await self.open_session(self._live)
        self.use(ws, self._live)
        if self.options.greeting is not None:  # no response.create to make Live speak
            self._live.append("instructions", self.options.greeting or "Greet the user briefly.")
            self._pending += self._replies.expect_speech()
        await self._flush()

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """The socket reader is `events()`; the supervisor (rollover, watchdog) joins the
        session's task group. The session keeps input flowing (`needs_continuous_input`)."""
        from foreman.backends.live_supervisor import supervise

        tg.create_task(supervise(self, tg), name=f"live-supervisor<{id(self):x}>")

    async def close(self) -> None:
        """`session.close`, then read until `session.closed` (bounded), then the socket."""
        if self._closing:
            return
        self._closing = True
        await recovery.drop_standby(self)
        ws = self._ws
        if ws is not None and self._live.phase in (LivePhase.STARTING, LivePhase.ACTIVE):
            self._live.close()
            await self._flush(force=True)
            # RuntimeError: a reader still inside recv() (close() from outside the session).
            with contextlib.suppress(TimeoutError, ConnectionClosed, RuntimeError):
                async with asyncio.timeout(CLOSE_DRAIN_S):
                    while not self._live.closed:
                        with contextlib.suppress(RemoteProtocolError):
                            self._live.receive(await ws.recv())
            if not self._live.closed:
                log.warning("%s: no session.closed; final usage unconfirmed", NAME)
        await self._drop()

    async def _drop(self) -> None:
        self._closed = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    # --- events --------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[b.BackendEvent]:
        if self._ws is None:
            raise BackendError("events() before start()", code="state")
        yield b.Ready(self._live.session_id or "", self._live.model or self.options.model)
        try:
            while True:
                ws = self._ws
                assert ws is not None
                lost_by: ConnectionClosed | None = None
                try:
                    async for frame in ws:
                        # close() ran, or a rollover swapped sockets: frames still in flight
                        # on this one are not ours to read.
                        if self._closing or ws is not self._ws:
                            break
                        for event in self._receive(frame):
                            yield event
                        if self._error is not None or self.ended_by_service is not None:
                            break
                        await self._flush()
                except ConnectionClosed as exc:
                    lost_by = exc
                if self._closing:
                    break
                if self._ws is not None and ws is not self._ws:
                    continue  # rolled over: read the new session
                if self._error is not None:
                    break
                lost = recovery.lost_reason(self, ws, lost_by)
                code = close_code(ws, lost_by)
                on_purpose = self.forced or self.ended_by_service
                retry = on_purpose or reconnect_worthwhile(close_code=code)
                if not (self.recovery.reconnect and retry):
                    if on_purpose or code not in (None, 1000):
                        self._error = lost
                    break
                for event in recovery.connection_lost(self, lost):
                    yield event
                with contextlib.suppress(Exception):
                    await ws.close()
                began = time.monotonic()
                if not await recovery.reconnect(self, lost):
                    break
                yield b.BackendWarning(
                    f"reconnected to the model after {time.monotonic() - began:.1f} s",
                    "reconnected",
                )
        finally:
            self._closed = True
            if self._error is not None and self._ws is not None:
                with contextlib.suppress(Exception):
                    await self._ws.close()
        yield b.Closed(self._error)

    def _receive(self, frame: str | bytes) -> list[b.BackendEvent]:
        try:
            received = self._live.receive(frame)
        except RemoteProtocolError as exc:
            self.counters["bad_frames"] += 1  # a bad frame never ends a call
            log.warning("< bad frame ignored: %s", exc)
            return []
        out = self._pending
        self._pending = []
        for item in received:
            out += self._translate(item)
        out += self._replies.work(self._live.busy)
        return out

    def _translate(self, item: Any) -> list[b.BackendEvent]:
        match item:
            case ev.OutputAudioDelta():
                try:
                    audio = binascii.a2b_base64(item.delta)
                except (binascii.Error, ValueError):
                    self.counters["bad_frames"] += 1
                    return []
                talking = self._replies.reply is not None
                out = self._replies.audio(audio)
                if talking and self._replies.reply is None:
                    self.digest.reply_ended()
                    self.watchdog.well()
                return out
            case ev.OutputTranscriptDelta():
                self.digest.assistant_piece(item.delta)
                return self._replies.transcript(item.delta, item.start_ms, item.end_ms)
            case ev.InputTranscriptDelta():
                self.digest.user_piece(item.delta)
                return [b.TranscriptSegment("user", item.delta, False, item.start_ms, item.end_ms)]
            case FunctionCallRequested():
                self._calls[item.call_id] = CarriedCall(item.call_id, item.name, item.arguments)
                self.digest.tool_call(item.name, item.arguments)
                return [ToolRequest(item.call_id, item.name, item.arguments)]
            case DelegationDone():
                return self._replies.expect_speech()  # the result is the model's to voice
            case ev.SessionClosed():
                if not self._closing:
                    self.ended_by_service = item.reason
                return []
            case ev.ErrorEvent():
                self.counters["warnings"] += 1
                log.warning("< error %s: %s", item.code, item.message)
                return [b.BackendWarning(item.message, item.code)]
            case ev.UnknownEvent():
                log.debug("< unknown event %s ignored", item.type)
        return []

    # --- commands ------------------------------------------------------------------------
    async def _flush(self, *, force: bool = False) -> None:
        ws = self._ws
        if ws is None or (self._closed and not force) or not self._live.pending_output:
            return
        for text in self._live.data_to_send():
            try:
                await ws.send(text)
            except ConnectionClosed:
                return  # the reader reports the close and reconnects

    async def push_audio(self, audio: bytes) -> None:
        await self.push_audio_b64(binascii.b2a_base64(audio, newline=False).decode("ascii"))

    async def push_audio_b64(self, audio_b64: str) -> None:
        """While the socket is down, the newest audio is held (see `HeldInput`)."""
        ws = self._ws
        if ws is None or self._closed:
            if not self._closed:
                self.held.add(audio_b64)
            return
        if self.standby is not None:  # a rollover waits for the caller to pause
            recovery.note_voice(self, audio_b64)
        frame = self._live.send_audio(audio_b64)
        if frame is None:
            return
        try:
            await ws.send(frame)
        except ConnectionClosed:
            if not self._closed:
                self.held.add(audio_b64)  # the reader is about to reconnect

    async def report_heard(self, segment: str | None, heard_ms: int | None) -> None:
        """Live has no cancel and no truncate, and the model yields by itself when talked
        over (so the session never flushes for it). What remains is a reply nobody listens
        to any more (a text turn whose reader left): the only lever is a corrective
        instruction, best effort."""
        self.counters["heard_reports"] += 1
        if self._closed or self._replies.reply is None:
            return
        self._live.append("instructions", STOP_TALKING)
        await self._flush()

    async def submit_tool_result(
        self, call_id: str, output: str, *, continue_conversation: bool = True
    ) -> None:
        if self._closed:
            return
        carried = self.carried.take(call_id)
        if carried is not None:  # its session is gone: the new one gets it as a note
            self.digest.tool_output(carried.name, output)
            kind: b.NoteKind = "instruction" if continue_conversation else "context"
            await self._note(kind, result_note(carried, output), record=False)
            return
        call = self._calls.pop(call_id, None)
        if call is not None:
            self.digest.tool_output(call.name, output)
        self._live.answer_call(call_id, output, continue_=continue_conversation)
        self._pending += self._replies.work(self._live.busy)
        await self._flush()

    async def add_note(self, kind: b.NoteKind, text: str) -> None:
        if self._closed:
            return
        await self._note(kind, text)

    async def _note(self, kind: b.NoteKind, text: str, *, record: bool = True) -> None:
        append: AppendKind = "thinking" if kind == "context" else "instructions"
        if self._ws is None:
            self.owed.append((append, text))  # recorded and sent once a session is up
            return
        if record:
            self.digest.note(text)
        self._live.append(append, text)
        if append == "instructions":  # the user should hear it: acted on now
            self._pending += self._replies.expect_speech()
        await self._flush()

    async def send_user_text(self, text: str) -> None:
        if self._closed:
            return
        if self._ws is None:
            self.owed.append(("typed", text))
            return
        self.digest.typed(text)
        self._live.send_user_text(text)
        self._pending += self._replies.work(self._live.busy)
        await self._flush()

    async def end_user_turn(self) -> bool:
        return False  # no turns: the model decides when to speak

    def status(self) -> b.BackendStatus:
        seconds = self.usage_before + self._live.usage_seconds
        return b.BackendStatus(
            backend=NAME,
            model=self._live.model or self.options.model,
            endpoint_host=endpoint_host(self.options.endpoint),
            provider_session_id=self._live.session_id,
            phase="reconnecting" if self.reconnecting else str(self._live.phase),
            counters={
                **self._live.counters,
                **self._live.delegations.counters,
                **self.counters,
                **self.recovery_counters,
                "replies": self._replies.replies,
                "audio_held_ms": self.held.held_ms,
                "audio_dropped_ms": self.held.dropped_ms,
            },
            usage={
                "seconds": round(seconds, 3),
                "cost_usd": round(seconds * USD_PER_SECOND, 6),
                "final": self._live.closed,
                "expires_at": self._live.expires_at,
            },
        )
