"""The OpenAI Realtime (GA) backend over WebSocket.

Every protocol decision lives in the sans-I/O `protocols.realtime.RealtimeClient` (handshake,
one response at a time, busy or idle, barge-in cancel and clamped truncation); this class
moves text frames between it and the socket and turns the session's commands into client
events. `realtime_events` turns the client's records into the backend-neutral events of
`backends.interface` (segments are Realtime output items, replies are responses).

The connection may change under a live session (`[realtime.recovery]`):

* **reconnect** (`realtime_recovery`): when the socket drops, `events()` keeps going: it
  closes what was running (the cut reply ends `incomplete`, its words so far become its
  final transcript), opens a new session with exponential backoff and full jitter inside a
  total window (a fatal answer such as 401 or an invalid key stops at once), replays the
  conversation as heard (`ConversationLedger`), appends the user's audio held meanwhile
  (`AudioBacklog`), and asks for what was owed: the cut reply's continuation, an answer to a
  turn or a tool output. Commands made while disconnected go to the ledger (a tool output is
  delivered on the new session; exactly one per call). The caller hears a short silence,
  then the assistant carries on; if the drop lost their last words, it says so and asks
  them to repeat.
* **rollover** and the **watchdog**: `realtime_supervisor.supervise` (started by `run`)
  prepares a standby session before the service's time limit and swaps it in at a pause,
  and nudges, reconnects or gives up on a model that stopped answering.

When all of that fails, `Closed(error)` says why in one line.
API reference: https://platform.openai.com/docs/api-reference/realtime
"""

from __future__ import annotations

import asyncio
import base64
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
from foreman.backends import realtime_recovery as recovery
from foreman.backends.realtime_events import HANDLERS, parse_segment
from foreman.backends.realtime_open import close_code, open_configured
from foreman.config import RealtimeConfig
from foreman.exceptions import BackendError, RemoteProtocolError
from foreman.io.realtime_ws import endpoint_host, key_allowed, open_realtime
from foreman.policy.backoff import Backoff, RetryWindow
from foreman.policy.watchdog import Watchdog
from foreman.protocols.realtime.backlog import AudioBacklog
from foreman.protocols.realtime.client import RealtimeClient
from foreman.protocols.realtime.errors import reconnect_worthwhile
from foreman.protocols.realtime.items import function_call_output_item
from foreman.protocols.realtime.replay import ConversationLedger
from foreman.protocols.realtime.session_config import (
    build_session_update,
    session_options_from_config,
)
from foreman.protocols.realtime.state import Phase

log = logging.getLogger(__name__)

NAME: Final = "openai-realtime"


class OpenAIRealtimeBackend:
    """One Realtime conversation. `start()`, `run(tg)`, then iterate `events()` in one task."""

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
        self.recovery = rc = config.recovery
        self._connector = connector
        self._ws: ClientConnection | None = None  # None while reconnecting: audio is held
        self._manual_turns = config.turn_detection.type == "none"
        self._auto_response = not self._manual_turns and config.turn_detection.create_response
        self._update = build_session_update(self._session_options())
        self._rt = RealtimeClient(self._update)
        self._proto = self._rt.session
        self._closing = False
        self._closed = False
        self._error: str | None = None
        # --- recovery state ---
        self.ledger = ConversationLedger(rc.replay_max_items)
        self._backlog = AudioBacklog(self.input_format.bytes_for_ms(int(rc.buffer_audio_s * 1000)))
        self.watchdog = Watchdog(rc.response_timeout_s, rc.stall_timeout_s, rc.nudges)
        backoff = Backoff(rc.backoff_initial_s, rc.backoff_max_s)
        self._window = RetryWindow(backoff, rc.reconnect_window_s)
        self._restored_at = -float("inf")  # when a reconnect last restored the session
        self.session_started_at = 0.0  # monotonic: when the current session was opened
        self.standby: tuple[ClientConnection, RealtimeClient] | None = None  # rollover
        self._forced: str | None = None  # why the supervisor took the connection down
        self._expired = False  # the service ended the session at its time limit
        self._turn_owed = False  # a committed user turn the service will answer
        self._owe_response = False  # asked for while disconnected
        self._owe_instructions: str | None = None
        self._owe_commit = False
        self._cut_reply = False  # a drop cut the assistant short
        self._ask_repeat = False  # a drop lost the user's last words
        self._user_speaking = False
        self._turn_open = False  # the user started a turn that is not committed yet
        self._open_segment: str | None = None
        self.recovery_counters: dict[str, int] = dict.fromkeys(
            ("reconnects", "rollovers", "watchdog_nudges", "watchdog_reconnects"), 0
        )

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
    async def open_session(self) -> tuple[ClientConnection, RealtimeClient]:
        """A new configured session (start, reconnect, rollover). Raises BackendError."""
        opts = self.options
        api_key = ""
        if self._config.api_key and key_allowed(opts.endpoint, self._config.api_key_hosts):
            api_key = self._config.api_key.get_secret_value()
        timeout_s = self._config.connect_timeout_s
        rc = self.recovery
        connect = functools.partial(
            self._connector,
            opts.endpoint,
            opts.model,
            api_key,
            timeout_s=timeout_s,
            ping_interval_s=rc.ping_interval_s,
            ping_timeout_s=rc.ping_timeout_s,
        )
        return await open_configured(
            connect,
            self._update,
            endpoint=opts.endpoint,
            timeout_s=timeout_s,
            input_format=self.input_format,
            output_format=self.output_format,
        )

    async def start(self) -> None:
        ws, rt = await self.open_session()
        self._use(ws, rt)
        for role, text in self.options.history:
            self._rt.add_text(role, text)
            self.ledger.text(role, text)
        if self.options.greeting is not None:
            self._rt.request_response(self.options.greeting or None)
        await self._flush()

    def _use(self, ws: ClientConnection, rt: RealtimeClient) -> None:
        """Make `ws` the live connection (no await: commands see one or the other)."""
        self._ws, self._rt, self._proto = ws, rt, rt.session
        now = time.monotonic()
        self.session_started_at = now
        self.watchdog.reset(now)
        self._turn_owed = self._user_speaking = self._turn_open = False
        self._open_segment = None

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """The socket reader is `events()`, which the session runs; here the supervisor
        (watchdog and rollover) joins the session's task group."""
        from foreman.backends.realtime_supervisor import supervise

        tg.create_task(supervise(self, tg), name=f"realtime-supervisor<{id(self):x}>")

    async def close(self) -> None:
        # `_closing`, not `_closed`: a cancelled events() reader sets `_closed` in its
        # finally, and the socket must still be closed afterwards.
        if self._closing:
            return
        self._closing = True
        self._closed = True
        self._proto.close()
        standby, self.standby = self.standby, None
        for ws in (self._ws, standby[0] if standby else None):
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # --- events --------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[b.BackendEvent]:
        if self._ws is None:
            raise BackendError("events() before start()", code="state")
        yield b.Ready(self._proto.session_id or "", self.options.model)
        handlers = HANDLERS
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
                        try:
                            received = self._rt.receive(frame)
                        except RemoteProtocolError as bad:
                            self._bad_frame(bad)
                            if self._error is not None:
                                break
                            continue
                        for item in received:
                            handler = handlers.get(type(item))
                            if handler is not None:
                                for event in handler(self, item):
                                    yield event
                        if self._error is not None or self._expired:
                            break
                        await self._flush()  # a deferred response.create released by it
                except ConnectionClosed as closed:
                    lost_by = closed
                if self._closing:
                    break
                if self._ws is not None and ws is not self._ws:
                    continue  # rolled over: read the new session
                if self._error is not None:
                    break
                lost = recovery.lost_reason(self, ws, lost_by)
                code = close_code(ws, lost_by)
                retry = self._forced or self._expired or reconnect_worthwhile(close_code=code)
                if not (self.recovery.reconnect and retry):
                    if self._forced or code not in (None, 1000):
                        self._error = lost
                    break
                for event in recovery.connection_lost(self, ws, lost):
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
            ws = self._ws
            if self._error is not None and ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()
            self._closed = True
        yield b.Closed(self._error)

    def _bad_frame(self, exc: RemoteProtocolError) -> None:
        if self._proto.phase is Phase.ERROR:  # an illegal sequence: sticky, end it
            self._error = f"protocol error: {self._proto.last_error or exc}"
        else:  # a malformed frame is the server's fault; log it and keep the session
            log.warning("< bad frame ignored: %s", exc)

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
            pass  # the reader reports the close and restores what the ledger holds

    async def push_audio(self, audio: bytes) -> None:
        await self.push_audio_b64(base64.b64encode(audio).decode("ascii"))

    async def push_audio_b64(self, audio_b64: str) -> None:
        """Audio already base64-encoded in `input_format` (phone passthrough: no re-encode).
        While the socket is down it is held (bounded) and sent after the reconnect."""
        ws = self._ws
        if ws is None or self._closed:
            if not self._closed and self._ws is None:
                self._backlog.add(audio_b64)
            return
        try:
            await ws.send(self._proto.send_audio(audio_b64))
        except ConnectionClosed:
            if not self._closed:
                self._backlog.add(audio_b64)  # the reader is about to reconnect

    async def report_heard(self, segment: str | None, heard_ms: int | None) -> None:
        if self._closed:
            return
        item_id, content_index = parse_segment(segment) if segment else (None, 0)
        if item_id is not None and heard_ms is not None:
            audio_ms = self._proto.audio_received_ms(item_id, content_index)
            self.ledger.assistant_heard(item_id, heard_ms, audio_ms)
        if self._ws is None:
            self._cut_reply = False  # the user talked over it: no continuation wanted
            return
        self._rt.interrupt(item_id, content_index, heard_ms)
        await self._flush()

    async def submit_tool_result(
        self, call_id: str, output: str, *, continue_conversation: bool = True
    ) -> None:
        if self._closed or not self.ledger.output(call_id, output):
            return  # a second output for one call is never sent
        if self._ws is None:  # replayed with the conversation on the new session
            self._owe_response = self._owe_response or continue_conversation
            return
        self._rt.add_item(function_call_output_item(call_id, output))
        if continue_conversation:
            self._rt.request_response()
        await self._flush()

    async def add_note(self, kind: b.NoteKind, text: str) -> None:
        if self._closed:
            return
        if kind == "instruction":
            if self._ws is None:
                self._owe_response, self._owe_instructions = True, text
                return
            self._rt.request_response(text)
        else:
            self.ledger.text("system", text)
            if self._ws is None:
                self._owe_response = self._owe_response or kind == "status"
                return
            self._rt.add_text("system", text)
            # A status the user should hear: speak now if quiet; while the assistant talks,
            # the note is read with whatever it says next.
            if kind == "status" and self._rt.idle:
                self._rt.request_response()
        await self._flush()

    async def send_user_text(self, text: str) -> None:
        if self._closed:
            return
        self.ledger.text("user", text)
        if self._ws is None:
            self._owe_response = True
            return
        self._rt.add_text("user", text)
        self._rt.request_response()
        await self._flush()

    async def end_user_turn(self) -> bool:
        if self._closed or not self._manual_turns:
            return False
        if self._ws is None:
            self._owe_commit = True  # after the held audio
            return True
        self._rt.commit_turn()
        await self._flush()
        return True

    def status(self) -> b.BackendStatus:
        fmt = self.input_format
        return b.BackendStatus(
            backend=NAME,
            model=self.options.model,
            endpoint_host=endpoint_host(self.options.endpoint),
            provider_session_id=self._proto.session_id,
            phase=str(self._proto.phase) if self._ws is not None else "reconnecting",
            counters={
                **self._proto.counters,
                **self.recovery_counters,
                "audio_held_ms": int(fmt.ms_for_bytes(self._backlog.bytes)),
                "audio_dropped_ms": int(fmt.ms_for_bytes(self._backlog.dropped_bytes)),
            },
        )
