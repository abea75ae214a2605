"""The registry of every live session, and the commands the API (and the TUI) send.

Phone calls, the desk assistant's voice session and, later, chat sessions all register
here, so status shows them together and shutdown ends them all. The desk session is the
owner's own voice mode: at most one runs, and `mode` is `voice` while it does, `text` at
rest (`end_call` or a stop returns to text). Starting validates everything it can before
dialling the backend, and every failure becomes a one-line `last_error`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from foreman.audio.formats import AudioFormat
from foreman.backends.interface import BackendOptions, VoiceBackend
from foreman.bus import EventBus
from foreman.chat.history import ConversationHistory, VoiceStart
from foreman.config import (
    RealtimeConfig,
    Settings,
    local_engine_selected,
    realtime_refusal,
    voice_target,
)
from foreman.endpoints.desk import DeskEndpoint
from foreman.endpoints.interface import AudioEndpoint
from foreman.endpoints.text import TextEndpoint
from foreman.events import ModeChanged, SessionFailed
from foreman.exceptions import AudioFormatError, BackendError, ForemanError
from foreman.io.realtime_ws import endpoint_host, key_allowed, needs_api_key
from foreman.policy.context import CallContext, Channel, Role
from foreman.protocols.realtime.endpoint import endpoint_problem
from foreman.session.conversation import ConversationSession
from foreman.session.tool_jobs import ToolHandler
from foreman.session.transcript_writer import HistoryHook
from foreman.stores.interfaces import SessionRegistryStore
from foreman.stores.records import SessionKind, SessionRecord

log = logging.getLogger("foreman.session")

BackendFactory = Callable[[BackendOptions], VoiceBackend]

SHUTDOWN_REASON: Final = "server shutting down"
SHUTDOWN_LIMIT_S: Final = 3.0  # how long shutdown waits for every session to close
# Of that, how long polite hang-ups get before the sessions still open are ended outright.
HANG_UP_SHARE: Final = 0.6


class AlreadyActive(ForemanError):
    """A desk voice session is already running (HTTP 409)."""


class StartRejected(ForemanError):
    """The start request cannot work as given (HTTP 400); the message says what to change."""


class ShuttingDown(StartRejected):
    """The server is shutting down: no new session may start."""


def model_key_problem(
    rt: RealtimeConfig, endpoint: str, *, mock_path: str = "/v1/realtime"
) -> str | None:
    """Why `endpoint` cannot be reached for want of a key (missing, or not to be sent
    there), or None. Checked before dialling: a phone call then plays its apology at once."""
    if not needs_api_key(endpoint):
        return None
    if not rt.api_key:
        return (
            "no OPENAI_API_KEY is set where `foreman serve` runs: export "
            "OPENAI_API_KEY=sk-... before starting the server, or run "
            "`foreman mock-realtime --port 9100` and start with endpoint "
            f"ws://127.0.0.1:9100{mock_path}"
        )
    if not key_allowed(endpoint, rt.api_key_hosts):
        return (
            f"the API key is sent only over wss:// to the hosts in [realtime] "
            f"api_key_hosts ({', '.join(rt.api_key_hosts) or 'none'}); "
            f"{endpoint_host(endpoint)} would get none"
        )
    return None


class DeskAudio(Protocol):
    """The desk's microphone and speaker (foreman.desk.service.DeskService)."""

    def endpoint(self, follow_up: bytes = b"") -> AudioEndpoint | None:
        """The speaker endpoint for a new voice session, `follow_up` (PCM16 at `[realtime]
        audio_in_hz`) heard first; None when there is no device."""
        ...


ModeListener = Callable[[str, "ConversationSession | None"], None]


class ToolCatalog(Protocol):
    def tool_definitions(self, ctx: CallContext) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class StartRequest:
    model: str | None = None
    voice: str | None = None
    in_sr: int | None = None
    out_format: str | None = None
    instructions: str | None = None
    endpoint: str | None = None
    transport: str | None = None


class SessionRegistry:
    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        backend_factory: BackendFactory,
        *,
        tools: ToolHandler | None = None,
        catalog: ToolCatalog | None = None,
        store: SessionRegistryStore | None = None,
        history: ConversationHistory | None = None,
    ) -> None:
        self.settings = settings
        self.history = history  # voice sessions are seeded from it and write into it
        self.store = store  # where other processes (and the next start-up) see live sessions
        self._writes: set[asyncio.Task[Any]] = set()
        self.bus = bus
        self.backend_factory = backend_factory
        self.tools = tools
        self.catalog = catalog
        self._live: dict[str, ConversationSession] = {}
        self.desk: ConversationSession | None = None
        self.last_error: str | None = None
        self._last: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[str]] = set()
        self.closing = False  # set by aclose(): a session that would start now is refused
        # The desk's devices, when there are some: voice sessions use them instead of text.
        self.desk_audio: DeskAudio | None = None
        self.mode_listeners: list[ModeListener] = []  # told (mode, session) on each change

    # --- every session -----------------------------------------------------------------
    def add(self, session: ConversationSession) -> None:
        if session.session_id in self._live:
            raise ValueError(f"session {session.session_id} is already live")
        self._live[session.session_id] = session
        if self.store is not None:
            self._write(self.store.upsert(_record(session)))

    def remove(self, session: ConversationSession) -> None:
        if self._live.get(session.session_id) is session:
            del self._live[session.session_id]
            if self.store is not None:
                self._write(self.store.remove(session.session_id))

    def _write(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._writes.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._writes.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("session registry not updated: %s", t.exception())

        task.add_done_callback(done)

    def get(self, session_id: str) -> ConversationSession | None:
        return self._live.get(session_id)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._live

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[ConversationSession]:
        return iter(list(self._live.values()))

    def of_channel(self, channel: Channel) -> list[ConversationSession]:
        return [s for s in self._live.values() if s.ctx.channel is channel]

    # --- the desk session ----------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "voice" if self.desk is not None and self.desk.active else "text"

    def options_for(self, req: StartRequest, ctx: CallContext) -> BackendOptions:
        rt = self.settings.realtime
        refusal = realtime_refusal(self.settings)
        if refusal is not None:
            raise StartRejected(refusal)
        transport = req.transport or rt.transport
        if transport == "webrtc":
            raise StartRejected(
                "transport 'webrtc' is not supported yet; use 'websocket' (WebRTC is planned)"
            )
        if transport != "websocket":
            raise StartRejected(f"unknown transport {transport!r}; use 'websocket'")
        target = voice_target(self.settings)
        endpoint = req.endpoint or target.endpoint
        problem = endpoint_problem(endpoint)
        if problem is not None:  # before anything parses it further or dials it
            raise StartRejected(f"endpoint {problem}")
        if not local_engine_selected(self.settings):  # the offline engine needs no key
            key_problem = model_key_problem(rt, endpoint, mock_path=target.mock_path)
            if key_problem is not None:
                raise StartRejected(key_problem)
        if req.in_sr is not None:
            # The API session takes text turns: there is no microphone whose rate this
            # could set, and a setting that is accepted and then ignored misleads.
            raise StartRejected(
                "audio.in_sr applies to a microphone; this session takes text turns "
                "(the desk microphone's rate is [realtime] audio_in_hz)"
            )
        try:
            model_format = AudioFormat.from_name(req.out_format or rt.audio_out_format)
        except AudioFormatError as exc:
            raise StartRejected(str(exc)) from None
        tools = self.catalog.tool_definitions(ctx) if self.catalog is not None else []
        return BackendOptions(
            model=req.model or target.model,
            endpoint=endpoint,
            voice=req.voice or target.voice,
            instructions=req.instructions if req.instructions is not None else rt.instructions,
            input_format=model_format,
            output_format=model_format,
            tools=tuple(tools),
        )

    def owner_context(self) -> CallContext:
        """The control API is loopback or token-protected: its user is the owner."""
        return CallContext(
            session_id=f"desk-{uuid.uuid4().hex[:12]}",
            channel=Channel.LOCAL_VOICE,
            role=Role.OWNER,
            caller_name=self.settings.identity.owner_name,
            verified=True,
        )

    async def start_desk(self, req: StartRequest, *, follow_up: bytes = b"") -> dict[str, Any]:
        """Start the owner's voice session: on the desk speaker and microphone when there
        are some (`follow_up` is heard first: what was said after the wake phrase), else as
        the API's text session."""
        async with self._lock:
            if self.desk is not None and self.desk.active:
                raise AlreadyActive("a realtime session is already active; stop it first")
            if self.closing:
                raise ShuttingDown("the server is shutting down")
            ctx = self.owner_context()  # the same context picks the tools and runs them
            options = self.options_for(req, ctx)
            # The owner's conversation so far, said first.
            start = await self.history.voice_start(ctx) if self.history is not None else None
            if start is not None:
                options = replace(options, history=start.seed)
            backend = self.backend_factory(options)
            self._last = {
                "model": options.model,
                "endpoint_host": endpoint_host(options.endpoint),
                "transport": "websocket",
            }
            try:
                await backend.start()
            except BackendError as exc:
                self.last_error = str(exc)
                log.warning("%s failed to start: %s", ctx.session_id, exc)
                self.bus.publish(SessionFailed(ctx.session_id, self.last_error))
                await backend.close()
                raise
            if self.closing:  # shutdown began while the backend connected
                await backend.close()
                raise ShuttingDown("the server is shutting down")
            self.last_error = None
            endpoint: AudioEndpoint | None = None
            if self.desk_audio is not None:
                endpoint = self.desk_audio.endpoint(follow_up)
            session = ConversationSession(
                ctx,
                backend,
                endpoint or TextEndpoint(),
                bus=self.bus,
                tools=self.tools,
                on_end=self._desk_ended,
                max_tool_calls=self.settings.limits.call_max_tool_calls,
                max_turn_backlog=self.settings.limits.turn_max_pending_events,
                history=self._writer(ctx, start),
            )
            if isinstance(endpoint, DeskEndpoint):
                endpoint.on_user_speech = session.barge_in  # a local barge-in
            self.desk = session
            self.add(session)
            task = asyncio.get_running_loop().create_task(session.run(), name="desk-session")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self.bus.publish(ModeChanged("voice"))
            self._tell_mode("voice", session)
            return self.status()

    def _tell_mode(self, mode: str, session: ConversationSession | None) -> None:
        for listener in list(self.mode_listeners):
            try:
                listener(mode, session)
            except Exception:
                log.exception("a mode listener failed")

    def _writer(self, ctx: CallContext, start: VoiceStart | None) -> HistoryHook | None:
        if self.history is None or start is None:
            return None
        return self.history.writer(ctx, start)

    def _desk_ended(self, session: ConversationSession) -> None:
        self.remove(session)
        if session.error:
            self.last_error = session.error
        if self.desk is session:
            self._last["counters"] = _counters(session)
            final = session.backend.status()  # closed by now: GPT-Live's usage is final
            self._last["backend"], self._last["usage"] = final.backend, dict(final.usage)
            self.desk = None
            self.bus.publish(ModeChanged("text"))
            self._tell_mode("text", session)

    async def stop_desk(self, reason: str = "stopped by API") -> dict[str, Any]:
        """Idempotent: stopping when nothing runs is fine."""
        async with self._lock:
            session = self.desk
            if session is not None:
                session.end(reason)
                await session.wait_closed()
            return self.status()

    async def aclose(
        self, reason: str = SHUTDOWN_REASON, limit_s: float = SHUTDOWN_LIMIT_S
    ) -> None:
        """Shutdown: refuse new sessions, end the desk session, hang up every call politely
        (its record says `reason`), and wait for them all to close, `limit_s` at most. A
        hang-up still running after its share of that time (Twilio not answering) is cut
        short: the session ends at once, so its record is still written. Idempotent."""
        self.closing = True
        live = list(self)
        for session in live:
            if session is self.desk or session.ctx.channel is not Channel.PHONE:
                session.end(reason)
            else:
                await session.hang_up_now(reason)
        if live:
            closed = [asyncio.ensure_future(s.wait_closed()) for s in live]
            _, still_open = await asyncio.wait(closed, timeout=limit_s * HANG_UP_SHARE)
            if still_open:
                for session in live:
                    session.end(reason)
                await asyncio.wait(still_open, timeout=limit_s * (1 - HANG_UP_SHARE))
            for waiter in closed:
                waiter.cancel()
            for session in self:
                log.warning("%s did not close within %g s", session.session_id, limit_s)
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    def status(self) -> dict[str, Any]:
        session = self.desk
        active = session is not None and session.active
        out: dict[str, Any] = {
            "active": active,
            "mode": self.mode,
            "model": self._last.get("model"),
            "since": None,
            "last_error": self.last_error,
            "transport": self._last.get("transport"),
            "endpoint_host": self._last.get("endpoint_host"),
            "session_id": None,
            "provider_session_id": None,
            "counters": self._last.get("counters", {}),
            "calls": len(self.of_channel(Channel.PHONE)),
            "backend": self._last.get("backend"),
            "usage": self._last.get("usage", {}),
        }
        if session is not None and active:
            backend = session.backend.status()
            out.update(
                since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session.started_at)),
                session_id=session.session_id,
                provider_session_id=backend.provider_session_id,
                counters=_counters(session),
                backend=backend.backend,
            )
            usage = dict(backend.usage)
            components = usage.pop("components", None)
            out["usage"] = usage
            if backend.backend == "local":  # its model and where it runs, not the cloud's
                out.update(model=backend.model, endpoint_host=backend.endpoint_host)
            if isinstance(components, dict):
                out["components"] = components
        return out


_KINDS: dict[Channel, SessionKind] = {
    Channel.PHONE: "phone",
    Channel.LOCAL_VOICE: "desk",
    Channel.CHAT: "chat",
}


def _record(session: ConversationSession) -> SessionRecord:
    ctx = session.ctx
    backend = session.backend.status()
    return SessionRecord(
        id=session.session_id,
        kind=_KINDS[ctx.channel],
        channel=str(ctx.channel),
        caller=ctx.caller_name or ctx.caller_id,
        started_at=session.started_at,
        backend=backend.backend,
        status={"model": backend.model, **session.labels},
    )


def _counters(session: ConversationSession) -> dict[str, Any]:
    backend = session.backend.status()
    return {**dict(backend.counters), "responses": session.stats.replies}
