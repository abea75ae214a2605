"""The OpenAI Realtime (GA) backend over WebSocket.

Every decision lives in the sans-I/O `protocols.realtime.RealtimeClient` (handshake, one
response at a time, busy or idle, barge-in cancel and clamped truncation); this class moves
text frames between it and the socket and translates its events into the backend-neutral
events of `backends.interface`. Segments are Realtime output items (`item_id`, with the
content index appended when it is not 0); replies are responses.
API reference: https://platform.openai.com/docs/api-reference/realtime
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from foreman.audio.formats import AudioFormat
from foreman.backends import interface as b
from foreman.config import RealtimeConfig
from foreman.exceptions import BackendError, RemoteProtocolError
from foreman.io.realtime_ws import endpoint_host, key_allowed, open_realtime
from foreman.protocols.realtime import server_events as se
from foreman.protocols.realtime.client import RealtimeClient
from foreman.protocols.realtime.errors import ErrorNotice
from foreman.protocols.realtime.items import function_call_output_item
from foreman.protocols.realtime.session_config import (
    build_session_update,
    session_options_from_config,
)
from foreman.protocols.realtime.state import FunctionCallReady, Phase
from foreman.protocols.realtime.wire_formats import format_from_wire
from foreman.tools.request import ToolRequest

log = logging.getLogger(__name__)

NAME: Final = "openai-realtime"
_Out = list[b.BackendEvent]


def segment_of(item_id: str, content_index: int) -> str:
    return item_id if content_index == 0 else f"{item_id}#{content_index}"


def parse_segment(segment: str) -> tuple[str, int]:
    item_id, sep, index = segment.rpartition("#")
    if sep and index.isdigit():
        return item_id, int(index)
    return segment, 0


class OpenAIRealtimeBackend:
    """One Realtime session. `start()`, `run(tg)`, then iterate `events()` in one task."""

    capabilities = b.Capabilities(
        server_barge_in=False, turn_based=True, needs_continuous_input=False, b64_passthrough=True
    )

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
        self._manual_turns = config.turn_detection.type == "none"
        self._rt = RealtimeClient(build_session_update(self._session_options()))
        self._proto = self._rt.session
        self._closing = False
        self._closed = False
        self._error: str | None = None
        self._handlers: dict[type, Callable[[Any], _Out]] = {
            se.InputAudioBufferSpeechStarted: lambda e: [b.UserSpeechStarted(e.audio_start_ms)],
            se.InputAudioBufferSpeechStopped: lambda e: [b.UserSpeechStopped(e.audio_end_ms)],
            se.InputAudioTranscriptionDelta: lambda e: [
                b.TranscriptSegment("user", e.delta, final=False)
            ],
            se.InputAudioTranscriptionCompleted: lambda e: [
                b.TranscriptSegment("user", e.transcript, final=True)
            ],
            se.ResponseCreated: self._on_response_created,
            se.ResponseDone: self._on_response_done,
            se.ResponseOutputAudioDelta: self._on_audio_delta,
            se.ResponseOutputAudioDone: lambda e: [
                b.SegmentEnded(segment_of(e.item_id, e.content_index))
            ],
            se.ResponseOutputAudioTranscriptDelta: lambda e: [
                b.TranscriptSegment("assistant", e.delta, final=False, reply=e.response_id)
            ],
            se.ResponseOutputAudioTranscriptDone: lambda e: [
                b.TranscriptSegment("assistant", e.transcript, final=True, reply=e.response_id)
            ],
            se.ResponseOutputTextDelta: lambda e: [
                b.TranscriptSegment("assistant", e.delta, final=False, reply=e.response_id)
            ],
            se.ResponseOutputTextDone: lambda e: [
                b.TranscriptSegment("assistant", e.text, final=True, reply=e.response_id)
            ],
            FunctionCallReady: lambda n: [ToolRequest(n.call_id, n.name, n.arguments)],
            ErrorNotice: self._on_error,
        }

    def _session_options(self) -> Any:
        opts = self.options
        return session_options_from_config(
            self._config,
            model=opts.model,
            voice=opts.voice,
            instructions=opts.instructions,
            input_format=self.input_format,
            output_format=self.output_format,
            tools=tuple(dict(t) for t in opts.tools),
        )

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
        """session.created -> session.update -> session.updated; then history and greeting."""
        ws = self._ws
        assert ws is not None
        while not self._rt.configured:
            try:
                frame = await ws.recv()
            except ConnectionClosed as exc:
                raise BackendError(self._close_reason(exc), code="closed") from None
            try:
                received = self._rt.receive(frame)
            except RemoteProtocolError as exc:
                raise BackendError(f"bad frame from the server: {exc}", code="protocol") from None
            for item in received[1:]:
                if isinstance(item, ErrorNotice) and item.severity != "harmless":
                    raise BackendError(_error_line(item), code=item.code)
            if isinstance(received[0], se.SessionUpdated):
                self._check_formats(received[0].session)
            await self._flush()
        for role, text in self.options.history:
            self._rt.add_text(role, text)
        if self.options.greeting is not None:
            self._rt.request_response(self.options.greeting or None)
        await self._flush()

    def _check_formats(self, session: dict[str, Any]) -> None:
        # A format mismatch is heard as noise and breaks the service's VAD.
        audio = session.get("audio") or {}
        for direction, want in (("input", self.input_format), ("output", self.output_format)):
            fmt = (audio.get(direction) or {}).get("format")
            if fmt is None:
                continue
            try:
                got = format_from_wire(fmt)
            except ValueError:
                got = None
            if got != want:
                raise BackendError(
                    f"the server applied {direction} format {fmt} instead of {want}",
                    code="format_mismatch",
                )

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """Nothing to start: the socket reader is `events()`, which the session runs."""

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
                    received = self._rt.receive(frame)
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
                await self._flush()  # a deferred response.create released by this frame
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
        if exc is not None and exc.sent is not None and exc.sent.code == 1009:
            # We closed it: a server event was over the cap ([limits] model_max_message_bytes).
            return f"{host}: a server event was too big; connection closed (1009)"
        if code is None:
            return f"{host}: connection lost"
        return f"{host}: connection closed ({code}{': ' + reason if reason else ''})"

    def _on_response_created(self, e: se.ResponseCreated) -> _Out:
        if e.response.get("conversation_id", "") is None:
            return []  # out of band: not the assistant talking to the user
        return [b.ReplyStarted(e.response_id)]

    def _on_audio_delta(self, e: se.ResponseOutputAudioDelta) -> _Out:
        try:
            audio = binascii.a2b_base64(e.delta)
        except (binascii.Error, ValueError):
            log.warning("< undecodable audio delta for %s dropped", e.item_id)
            return []
        return [b.AssistantAudio(audio, segment_of(e.item_id, e.content_index), e.response_id)]

    def _on_response_done(self, e: se.ResponseDone) -> _Out:
        if e.response.get("conversation_id", "") is None:
            return []
        details = e.response.get("status_details") or {}
        reason = details.get("reason") if isinstance(details, dict) else None
        out: _Out = [b.ReplyEnded(e.response_id, e.status, reason)]
        if self._rt.idle:
            out.append(b.AssistantIdle())
        return out

    def _on_error(self, n: ErrorNotice) -> _Out:
        if n.severity == "harmless":
            log.debug("< harmless error %s: %s", n.code, n.message)
            return []
        if n.severity == "fatal":
            self._error = _error_line(n)
            return []
        log.warning("< error %s: %s", n.code, n.message)
        out: _Out = [b.BackendWarning(n.message, n.code)]
        if n.client_event_type == "response.create" and self._rt.idle:
            out.append(b.AssistantIdle())  # the reply that was asked for will not come
        return out

    # --- commands ------------------------------------------------------------------------
    async def _flush(self) -> None:
        if self._rt.pending_output:
            for text in self._rt.data_to_send():
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

    async def push_audio_b64(self, audio_b64: str) -> None:
        """Audio already base64-encoded in `input_format` (phone passthrough: no re-encode)."""
        ws = self._ws
        if ws is None or self._closed:
            return
        try:  # noqa: SIM105 - per audio frame: cheaper than a context manager
            await ws.send(self._proto.send_audio(audio_b64))
        except ConnectionClosed:
            pass  # the reader reports the close with its reason

    async def report_heard(self, segment: str | None, heard_ms: int | None) -> None:
        if self._closed:
            return
        item_id, content_index = parse_segment(segment) if segment else (None, 0)
        self._rt.interrupt(item_id, content_index, heard_ms)
        await self._flush()

    async def submit_tool_result(
        self, call_id: str, output: str, *, continue_conversation: bool = True
    ) -> None:
        if self._closed:
            return
        self._rt.add_item(function_call_output_item(call_id, output))
        if continue_conversation:
            self._rt.request_response()
        await self._flush()

    async def add_note(self, kind: b.NoteKind, text: str) -> None:
        if self._closed:
            return
        if kind == "instruction":
            self._rt.request_response(text)
        else:
            self._rt.add_text("system", text)
            # A status the user should hear: speak now if quiet; while the assistant talks,
            # the note is read with whatever it says next.
            if kind == "status" and self._rt.idle:
                self._rt.request_response()
        await self._flush()

    async def send_user_text(self, text: str) -> None:
        if self._closed:
            return
        self._rt.add_text("user", text)
        self._rt.request_response()
        await self._flush()

    async def end_user_turn(self) -> bool:
        if self._closed or not self._manual_turns:
            return False
        self._rt.commit_turn()
        await self._flush()
        return True

    def status(self) -> b.BackendStatus:
        return b.BackendStatus(
            backend=NAME,
            model=self.options.model,
            endpoint_host=endpoint_host(self.options.endpoint),
            provider_session_id=self._proto.session_id,
            phase=str(self._proto.phase),
            counters=dict(self._proto.counters),
        )


def _error_line(n: ErrorNotice) -> str:
    code = f" ({n.code})" if n.code else ""
    return f"server error{code}: {n.message}".replace("\n", " ")
