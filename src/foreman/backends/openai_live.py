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

Reference: https://developers.openai.com/api/docs/guides/live,
https://developers.openai.com/api/docs/guides/live-delegation.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from foreman.audio.formats import AudioFormat
from foreman.backends import interface as b
from foreman.backends.live_replies import TrackReplies
from foreman.config import LiveConfig, RealtimeConfig
from foreman.exceptions import AudioFormatError, BackendError, RemoteProtocolError
from foreman.io.realtime_ws import endpoint_host, key_allowed, open_realtime
from foreman.protocols.live import events as ev
from foreman.protocols.live.client import LiveClient, LivePhase
from foreman.protocols.live.delegations import DelegationDone, FunctionCallRequested
from foreman.protocols.live.session_config import (
    LiveSessionOptions,
    audio_format_to_wire,
    build_session_config,
)
from foreman.tools.request import ToolRequest

log = logging.getLogger(__name__)

NAME: Final = "openai-live"
USD_PER_SECOND: Final = 0.05 / 60  # voice time, billed per second (backend tokens apart)
CLOSE_DRAIN_S: Final = 3.0  # waiting for session.closed after session.close
STOP_TALKING: Final = "Stop talking now: the user is no longer listening. Say nothing more."


class OpenAILiveBackend:
    """One GPT-Live session. `start()`, `run(tg)`, then iterate `events()` in one task."""

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
        self._connector = connector
        # A setup problem is reported by start(), where every caller expects a BackendError.
        self._setup_error: str | None = None
        session_config: dict[str, Any] = {}
        if options.input_format != options.output_format:
            self._setup_error = "GPT-Live uses one audio format for both directions"
        else:
            try:
                session_config = build_session_config(
                    LiveSessionOptions(
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
                )
            except AudioFormatError as exc:
                self._setup_error = str(exc)
        self._live = LiveClient(session_config)
        self._replies = TrackReplies(self.output_format)
        self._ws: ClientConnection | None = None
        self._closing = False
        self._closed = False
        self._error: str | None = None
        self._pending: list[b.BackendEvent] = []  # caused by commands; emitted with the next frame
        self.counters: dict[str, int] = {"heard_reports": 0, "bad_frames": 0, "warnings": 0}

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        opts = self.options
        if self._setup_error is not None:
            raise BackendError(self._setup_error, code="format")
        api_key = ""
        if self._config.api_key and key_allowed(opts.endpoint, self._config.api_key_hosts):
            api_key = self._config.api_key.get_secret_value()
        self._ws = await self._connector(
            opts.endpoint, None, api_key, timeout_s=self._config.connect_timeout_s
        )
        try:
            await asyncio.wait_for(self._handshake(), self._config.connect_timeout_s)
        except TimeoutError:
            await self._drop()
            raise BackendError(
                f"{endpoint_host(opts.endpoint)}: no session.started within "
                f"{self._config.connect_timeout_s:g} s",
                code="timeout",
            ) from None
        except BackendError:
            await self._drop()
            raise
        if opts.greeting is not None:  # no response.create to make Live speak: instruct it
            self._live.append("instructions", opts.greeting or "Greet the user briefly.")
            self._pending += self._replies.expect_speech()
        await self._flush()

    async def _handshake(self) -> None:
        """session.start -> session.started (the first event; an error means no session)."""
        ws = self._ws
        assert ws is not None
        self._live.start()
        await self._flush()
        while self._live.phase is LivePhase.STARTING:
            try:
                frame = await ws.recv()
            except ConnectionClosed as exc:
                raise BackendError(self._close_reason(exc), code="closed") from None
            try:
                received = self._live.receive(frame)
            except RemoteProtocolError as exc:
                raise BackendError(f"bad frame from the server: {exc}", code="protocol") from None
            first = received[0]
            if isinstance(first, ev.ErrorEvent):
                raise BackendError(_error_line(first), code=first.code)
            if isinstance(first, ev.SessionClosed):
                raise BackendError(f"session closed at start ({first.reason})", code="closed")
            if isinstance(first, ev.SessionStarted):
                self._check_format(first.session)

    def _check_format(self, session: Any) -> None:
        # A format mismatch is heard as noise: refuse rather than play it.
        fmt = ((session.get("audio") or {}) if isinstance(session, dict) else {}).get("format")
        if fmt is not None and fmt != audio_format_to_wire(self.input_format):
            raise BackendError(
                f"the server applied audio format {fmt} instead of {self.input_format}",
                code="format_mismatch",
            )

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """Nothing to start: the session keeps input flowing (`needs_continuous_input`),
        and the socket reader is `events()`."""

    async def close(self) -> None:
        """`session.close`, then read until `session.closed` (bounded), then the socket."""
        if self._closing:
            return
        self._closing = True
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
        ws = self._ws
        if ws is None:
            raise BackendError("events() before start()", code="state")
        yield b.Ready(self._live.session_id or "", self._live.model or self.options.model)
        try:
            async for frame in ws:
                if self._closing:
                    break
                try:
                    received = self._live.receive(frame)
                except RemoteProtocolError as exc:
                    self.counters["bad_frames"] += 1  # a bad frame never ends a call
                    log.warning("< bad frame ignored: %s", exc)
                    continue
                out = self._pending
                self._pending = []
                for item in received:
                    out += self._translate(item)
                out += self._replies.work(self._live.busy)
                for event in out:
                    yield event
                if self._error is not None:
                    break
                await self._flush()
        except ConnectionClosed as exc:
            if not self._closing and self._error is None:
                self._error = self._close_reason(exc)
        finally:
            self._closed = True
        if self._error is None and not self._closing and ws.close_code not in (None, 1000):
            self._error = self._close_reason(None)
        yield b.Closed(self._error)

    def _translate(self, item: Any) -> list[b.BackendEvent]:
        match item:
            case ev.OutputAudioDelta():
                try:
                    audio = binascii.a2b_base64(item.delta)
                except (binascii.Error, ValueError):
                    self.counters["bad_frames"] += 1
                    return []
                return self._replies.audio(audio)
            case ev.OutputTranscriptDelta():
                return self._replies.transcript(item.delta, item.start_ms, item.end_ms)
            case ev.InputTranscriptDelta():
                return [b.TranscriptSegment("user", item.delta, False, item.start_ms, item.end_ms)]
            case FunctionCallRequested():
                return [ToolRequest(item.call_id, item.name, item.arguments)]
            case DelegationDone():
                return self._replies.expect_speech()  # the result is the model's to voice
            case ev.SessionClosed():
                if not self._closing:
                    self._error = f"the session closed ({item.reason})"
                return []
            case ev.ErrorEvent():
                self.counters["warnings"] += 1
                log.warning("< error %s: %s", item.code, item.message)
                return [b.BackendWarning(item.message, item.code)]
            case ev.UnknownEvent():
                log.debug("< unknown event %s ignored", item.type)
        return []

    def _close_reason(self, exc: ConnectionClosed | None) -> str:
        ws = self._ws
        rcvd = exc.rcvd if exc is not None else None
        code = rcvd.code if rcvd else (ws.close_code if ws else None)
        reason = rcvd.reason if rcvd else (ws.close_reason if ws else "")
        host = endpoint_host(self.options.endpoint)
        if exc is not None and exc.sent is not None and exc.sent.code == 1009:
            return f"{host}: a server event was too big; connection closed (1009)"
        if code is None:
            return f"{host}: connection lost"
        return f"{host}: connection closed ({code}{': ' + reason if reason else ''})"

    # --- commands ------------------------------------------------------------------------
    async def _flush(self, *, force: bool = False) -> None:
        ws = self._ws
        if ws is None or (self._closed and not force) or not self._live.pending_output:
            return
        for text in self._live.data_to_send():
            try:
                await ws.send(text)
            except ConnectionClosed:
                return  # the reader reports the close with its reason

    async def push_audio(self, audio: bytes) -> None:
        await self.push_audio_b64(binascii.b2a_base64(audio, newline=False).decode("ascii"))

    async def push_audio_b64(self, audio_b64: str) -> None:
        ws = self._ws
        if ws is None or self._closed:
            return
        frame = self._live.send_audio(audio_b64)
        if frame is None:
            return
        try:  # noqa: SIM105 - per audio frame: cheaper than a context manager
            await ws.send(frame)
        except ConnectionClosed:
            pass  # the reader reports the close with its reason

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
        self._live.answer_call(call_id, output, continue_=continue_conversation)
        self._pending += self._replies.work(self._live.busy)
        await self._flush()

    async def add_note(self, kind: b.NoteKind, text: str) -> None:
        if self._closed:
            return
        if kind == "context":
            self._live.append("thinking", text)
        else:  # the user should hear it: instructions are acted on now
            self._live.append("instructions", text)
            self._pending += self._replies.expect_speech()
        await self._flush()

    async def send_user_text(self, text: str) -> None:
        if self._closed:
            return
        self._live.send_user_text(text)
        self._pending += self._replies.work(self._live.busy)
        await self._flush()

    async def end_user_turn(self) -> bool:
        return False  # no turns: the model decides when to speak

    def status(self) -> b.BackendStatus:
        seconds = self._live.usage_seconds
        return b.BackendStatus(
            backend=NAME,
            model=self._live.model or self.options.model,
            endpoint_host=endpoint_host(self.options.endpoint),
            provider_session_id=self._live.session_id,
            phase=str(self._live.phase),
            counters={
                **self._live.counters,
                **self._live.delegations.counters,
                **self.counters,
                "replies": self._replies.replies,
            },
            usage={
                "seconds": round(seconds, 3),
                "cost_usd": round(seconds * USD_PER_SECOND, 6),
                "final": self._live.closed,
                "expires_at": self._live.expires_at,
            },
        )


def _error_line(e: ev.ErrorEvent) -> str:
    code = f" ({e.code})" if e.code else ""
    return f"server error{code}: {e.message}".replace("\n", " ")
