"""The OpenAI Realtime GA backend over WebSocket.

Protocol decisions live in `protocols.realtime.RealtimeSession` (sans-I/O); this class only
moves text frames between it and the socket and translates protocol events into the
backend events sessions understand. Reference: openai-realtime.md §2-§5, §11.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from foreman.audio.formats import AudioFormat
from foreman.backends import base as b
from foreman.config import RealtimeConfig
from foreman.exceptions import BackendError, RemoteProtocolError
from foreman.io.realtime_ws import endpoint_host, key_allowed, open_realtime
from foreman.protocols.realtime import client_events as ce
from foreman.protocols.realtime import items
from foreman.protocols.realtime import server_events as se
from foreman.protocols.realtime.errors import ErrorNotice
from foreman.protocols.realtime.session_config import (
    build_session_update,
    session_options_from_config,
)
from foreman.protocols.realtime.state import FunctionCallReady, Phase, RealtimeSession

log = logging.getLogger(__name__)

_Out = list[b.BackendEvent]


class OpenAIRealtimeBackend:
    """One Realtime session. Call `start()`, then iterate `events()` in one task."""

    def __init__(
        self,
        options: b.BackendOptions,
        config: RealtimeConfig,
        *,
        connector: Callable[..., Any] = open_realtime,
    ) -> None:
        self.options = options
        self.input_format: AudioFormat = options.input_format
        self.output_format: AudioFormat = options.output_format
        self._config = config
        self._connector = connector
        self._ws: ClientConnection | None = None
        self._proto = RealtimeSession()
        self._create_pending = False  # a response.create waiting for the active one to end
        self._create_instructions: str | None = None
        self._closing = False
        self._closed = False
        self._error: str | None = None
        self._handlers: dict[type, Callable[[Any], _Out]] = {
            se.InputAudioBufferSpeechStarted: lambda e: [
                b.SpeechStarted(e.audio_start_ms, e.item_id)
            ],
            se.InputAudioBufferSpeechStopped: lambda e: [
                b.SpeechStopped(e.audio_end_ms, e.item_id)
            ],
            se.InputAudioTranscriptionDelta: lambda e: [
                b.Transcript("user", e.item_id, e.delta, final=False)
            ],
            se.InputAudioTranscriptionCompleted: lambda e: [
                b.Transcript("user", e.item_id, e.transcript, final=True)
            ],
            se.ResponseCreated: lambda e: [b.ResponseStarted(e.response_id)],
            se.ResponseDone: self._on_response_done,
            se.ResponseOutputAudioDelta: self._on_audio_delta,
            se.ResponseOutputAudioDone: lambda e: [
                b.AudioDone(e.item_id, e.content_index, e.response_id)
            ],
            se.ResponseOutputAudioTranscriptDelta: lambda e: [
                b.Transcript("assistant", e.item_id, e.delta, final=False)
            ],
            se.ResponseOutputAudioTranscriptDone: lambda e: [
                b.Transcript("assistant", e.item_id, e.transcript, final=True)
            ],
            se.ResponseOutputTextDelta: lambda e: [
                b.Transcript("assistant", e.item_id, e.delta, final=False)
            ],
            se.ResponseOutputTextDone: lambda e: [
                b.Transcript("assistant", e.item_id, e.text, final=True)
            ],
            FunctionCallReady: lambda n: [
                b.ToolRequest(n.call_id, n.name, n.arguments, n.item_id, n.response_id)
            ],
            ErrorNotice: self._on_error,
        }

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        opts = self.options
        api_key = ""
        if self._config.api_key and key_allowed(opts.endpoint, self._config.api_key_hosts):
            api_key = self._config.api_key.get_secret_value()
        self._ws = await self._connector(
            opts.endpoint, opts.model, api_key, timeout_s=self._config.connect_timeout_s
        )
        try:
            await asyncio.wait_for(self._configure(), self._config.connect_timeout_s)
        except TimeoutError:
            await self.close()
            raise BackendError(
                f"{endpoint_host(opts.endpoint)}: no session.updated within "
                f"{self._config.connect_timeout_s:g} s",
                code="timeout",
            ) from None
        except BackendError:
            await self.close()
            raise

    async def _configure(self) -> None:
        """session.created -> session.update -> session.updated (reference §11 step 2)."""
        assert self._ws is not None
        await self._expect(se.SessionCreated)
        session_opts = session_options_from_config(
            self._config,
            model=self.options.model,
            voice=self.options.voice,
            instructions=self.options.instructions,
            input_format=self.input_format,
            output_format=self.output_format,
            tools=tuple(self.options.tools),
        )
        await self._send(build_session_update(session_opts))
        updated = await self._expect(se.SessionUpdated)
        self._check_formats(updated.session)
        for role, text in self.options.context:
            await self.add_context(role, text)  # type: ignore[arg-type]
        if self.options.greeting is not None:
            await self.request_response(self.options.greeting or None)

    async def _expect(self, kind: type) -> Any:
        """Read until an event of `kind`; an error before it fails the start."""
        assert self._ws is not None
        while True:
            try:
                frame = await self._ws.recv()
            except ConnectionClosed as exc:
                raise BackendError(self._close_reason(exc), code="closed") from None
            try:
                out = self._proto.receive(frame)
            except RemoteProtocolError as exc:
                raise BackendError(f"bad frame from the server: {exc}", code="protocol") from None
            for item in out:
                if isinstance(item, ErrorNotice):
                    if item.severity == "harmless":
                        continue
                    raise BackendError(_error_line(item), code=item.code)
                if isinstance(item, kind):
                    return item

    def _check_formats(self, session: dict[str, Any]) -> None:
        # A format mismatch is heard as noise and breaks VAD (twilio reference §4.1).
        audio = session.get("audio") or {}
        for direction, want in (("input", self.input_format), ("output", self.output_format)):
            fmt = (audio.get(direction) or {}).get("format")
            if fmt is None:
                continue
            try:
                got = AudioFormat.from_realtime(fmt)
            except ValueError:
                got = None
            if got != want:
                raise BackendError(
                    f"the server applied {direction} format {fmt} instead of {want.to_realtime()}",
                    code="format_mismatch",
                )

    async def close(self) -> None:
        # `_closing`, not `_closed`: a cancelled events() reader sets `_closed` in its
        # finally, and the socket must still be closed afterwards.
        if self._closing:
            return
        self._closing = True
        self._closed = True
        self._proto.close()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    # --- events --------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[b.BackendEvent]:
        ws = self._ws
        if ws is None:
            raise BackendError("events() before start()", code="state")
        yield b.Ready(self._proto.session_id or "", self.options.model)
        try:
            async for frame in ws:
                if self._closing:  # close() ran: frames still in flight are not ours to read
                    break
                try:
                    received = self._proto.receive(frame)
                except RemoteProtocolError as exc:
                    if self._proto.phase is Phase.ERROR:  # an illegal sequence: sticky, end it
                        self._error = f"protocol error: {self._proto.last_error or exc}"
                        break
                    # A malformed frame is the server's fault; log it and keep the session.
                    log.warning("< bad frame ignored: %s", exc)
                    continue
                for item in received:
                    handler = self._handlers.get(type(item))
                    if handler is None:
                        continue
                    for event in handler(item):
                        yield event
                if self._error is not None:
                    break
                if self._create_pending and self._proto.active_response_id is None:
                    await self._flush_create()
        except ConnectionClosed as exc:
            if not self._closing and self._error is None:
                self._error = self._close_reason(exc)
        finally:
            if self._error is not None:
                with contextlib.suppress(Exception):
                    await ws.close()
            self._closed = True
        if self._error is None and not self._closing and ws.close_code not in (None, 1000):
            self._error = self._close_reason(None)
        yield b.Closed(self._error)

    def _close_reason(self, exc: ConnectionClosed | None) -> str:
        ws = self._ws
        code = exc.rcvd.code if exc is not None and exc.rcvd else (ws.close_code if ws else None)
        reason = (
            exc.rcvd.reason if exc is not None and exc.rcvd else (ws.close_reason if ws else "")
        )
        host = endpoint_host(self.options.endpoint)
        if code is None:
            return f"{host}: connection lost"
        return f"{host}: connection closed ({code}{': ' + reason if reason else ''})"

    def _on_audio_delta(self, e: se.ResponseOutputAudioDelta) -> _Out:
        try:
            audio = binascii.a2b_base64(e.delta)
        except (binascii.Error, ValueError):
            log.warning("< undecodable audio delta for %s dropped", e.item_id)
            return []
        return [b.AudioOut(audio, e.item_id, e.content_index, e.response_id)]

    def _on_response_done(self, e: se.ResponseDone) -> _Out:
        details = e.response.get("status_details") or {}
        reason = details.get("reason") if isinstance(details, dict) else None
        usage = e.response.get("usage") or {}
        return [
            b.ResponseDone(
                e.response_id, e.status, reason, usage if isinstance(usage, dict) else {}
            )
        ]

    def _on_error(self, n: ErrorNotice) -> _Out:
        if n.severity == "harmless":
            log.debug("< harmless error %s: %s", n.code, n.message)
            return []
        if n.severity == "fatal":
            self._error = _error_line(n)
            return []
        log.warning("< error %s: %s", n.code, n.message)
        return [b.BackendWarning(n.message, n.code)]

    # --- commands ------------------------------------------------------------------------
    async def _send(self, event: ce.ClientEvent) -> None:
        text = self._proto.send(event)
        await self._send_text(text)

    async def _send_text(self, text: str) -> None:
        ws = self._ws
        if ws is None or self._closed:
            return
        try:  # noqa: SIM105 - per audio frame: cheaper than a context manager
            await ws.send(text)
        except ConnectionClosed:
            pass  # the reader reports the close with its reason

    async def push_audio(self, audio: bytes) -> None:
        await self.push_audio_b64(base64.b64encode(audio).decode("ascii"))

    async def push_audio_b64(self, b64_audio: str) -> None:
        """Audio already base64-encoded in `input_format` (phone passthrough: no re-encode)."""
        if self._closed:
            return
        await self._send_text(self._proto.send_audio(b64_audio))

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        await self._send(
            ce.ConversationItemCreate(items.function_call_output_item(call_id, output))
        )
        if respond:
            await self.request_response()

    async def add_context(self, role: Literal["user", "assistant", "system"], text: str) -> None:
        make = {
            "user": items.user_text_item,
            "assistant": items.assistant_text_item,
            "system": items.system_text_item,
        }[role]
        await self._send(ce.ConversationItemCreate(make(text)))

    async def request_response(self, instructions: str | None = None) -> None:
        """response.create now, or after the active response ends (reference §4 step 5)."""
        self._create_instructions = instructions
        if self._proto.active_response_id is None:
            await self._flush_create()
        else:
            self._create_pending = True

    async def _flush_create(self) -> None:
        self._create_pending = False
        body = {"instructions": self._create_instructions} if self._create_instructions else None
        self._create_instructions = None
        await self._send(ce.ResponseCreate(body))

    async def interrupt(self, item_id: str | None, heard_ms: int | None, *, cancel: bool) -> None:
        """Barge-in: cancel a streaming response, truncate to what was heard (reference §5.2)."""
        if cancel and self._proto.active_response_id is not None:
            await self._send(ce.ResponseCancel())
        if item_id is not None and heard_ms is not None:
            truncate = self._proto.clamp_truncate(item_id, 0, heard_ms)
            if truncate is not None:
                await self._send(truncate)

    def status(self) -> dict[str, Any]:
        return {
            "session_id": self._proto.session_id,
            "model": self.options.model,
            "endpoint_host": endpoint_host(self.options.endpoint),
            "phase": str(self._proto.phase),
            "counters": dict(self._proto.counters),
        }


def _error_line(n: ErrorNotice) -> str:
    code = f" ({n.code})" if n.code else ""
    return f"server error{code}: {n.message}".replace("\n", " ")
