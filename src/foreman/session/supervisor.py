"""The supervisor: the registry of live sessions and the commands the API and TUI send.

It holds at most one API-started voice session (the desk assistant's V2V mode) and knows
the mode (text at rest, voice while a session runs). Phone calls register here too so
status shows every live session. Starting validates everything it can before dialling the
backend, and every failure lands in `last_error` as one line.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from foreman.audio.formats import AudioFormat
from foreman.backends.base import BackendOptions
from foreman.backends.factory import BackendFactory
from foreman.config import Settings, realtime_refusal
from foreman.exceptions import AudioFormatError, BackendError, ForemanError
from foreman.io.realtime_ws import endpoint_host, key_allowed, needs_api_key
from foreman.policy.context import CallContext, Channel, Role
from foreman.session.bus import EventBus
from foreman.session.voice import ToolHandler, VoiceSession

log = logging.getLogger(__name__)


class AlreadyActive(ForemanError):
    """A voice session is already running (HTTP 409)."""


class StartRejected(ForemanError):
    """The start request cannot work as given (HTTP 400); the message says what to change."""


@dataclass(frozen=True)
class StartRequest:
    model: str | None = None
    voice: str | None = None
    in_sr: int | None = None
    out_format: str | None = None
    instructions: str | None = None
    endpoint: str | None = None
    transport: str | None = None


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        backend_factory: BackendFactory,
        *,
        tools: ToolHandler | None = None,
        tool_definitions: Any = None,
        calls: Any = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.backend_factory = backend_factory
        self.tools = tools
        self._tool_definitions = tool_definitions  # callable(ctx) -> list[dict]
        self.session: VoiceSession | None = None
        self.last_error: str | None = None
        self._last: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self.calls = calls if calls is not None else {}  # live phone calls (sized, iterable)

    @property
    def mode(self) -> str:
        return "voice" if self.session is not None and self.session.active else "text"

    def options_for(self, req: StartRequest, ctx: CallContext | None = None) -> BackendOptions:
        refusal = realtime_refusal(self.settings)
        if refusal is not None:
            raise StartRejected(refusal)
        rt = self.settings.realtime
        transport = req.transport or rt.transport
        if transport == "webrtc":
            raise StartRejected(
                "transport 'webrtc' is not supported yet; use 'websocket' (WebRTC is planned)"
            )
        if transport != "websocket":
            raise StartRejected(f"unknown transport {transport!r}; use 'websocket'")
        endpoint = req.endpoint or rt.endpoint
        if not endpoint.startswith(("ws://", "wss://")):
            raise StartRejected(f"endpoint must be a ws:// or wss:// URL, got {endpoint!r}")
        if needs_api_key(endpoint) and not rt.api_key:
            raise StartRejected(
                "no OPENAI_API_KEY is set: export OPENAI_API_KEY=sk-..., or run "
                "`foreman mock-realtime --port 9100` and start with endpoint "
                "ws://127.0.0.1:9100/v1/realtime"
            )
        if needs_api_key(endpoint) and not key_allowed(endpoint, rt.api_key_hosts):
            raise StartRejected(
                f"the API key is sent only over wss:// to the hosts in [realtime] "
                f"api_key_hosts ({', '.join(rt.api_key_hosts) or 'none'}); "
                f"{endpoint_host(endpoint)} would get none"
            )
        try:
            model_format = AudioFormat.from_name(req.out_format or rt.audio_out_format)
        except AudioFormatError as exc:
            raise StartRejected(str(exc)) from None
        in_sr = req.in_sr or rt.audio_in_hz
        if in_sr not in (8000, 16000, 24000, 48000):
            raise StartRejected("audio.in_sr must be 8000, 16000, 24000 or 48000")
        ctx = ctx or self._console_context()
        tools = self._tool_definitions(ctx) if self._tool_definitions else []
        return BackendOptions(
            model=req.model or rt.model,
            endpoint=endpoint,
            voice=req.voice or rt.voice,
            instructions=req.instructions if req.instructions is not None else rt.instructions,
            input_format=model_format,
            output_format=model_format,
            tools=tools,
        )

    def _console_context(self) -> CallContext:
        # The control API is loopback or token-protected: its user is the owner.
        return CallContext(
            session_id=f"rt_{uuid.uuid4().hex[:12]}",
            channel=Channel.LOCAL_VOICE,
            role=Role.OWNER,
            caller_name=self.settings.identity.owner_name,
            verified=True,
        )

    async def start(self, req: StartRequest) -> dict[str, Any]:
        async with self._lock:
            if self.session is not None and self.session.active:
                raise AlreadyActive("a realtime session is already active; stop it first")
            ctx = self._console_context()  # the same context picks the tools and runs them
            options = self.options_for(req, ctx)
            backend = self.backend_factory(options)
            session = VoiceSession(backend, ctx, self.bus, tools=self.tools, on_end=self._ended)
            self._last = {
                "model": options.model,
                "endpoint_host": endpoint_host(options.endpoint),
                "transport": "websocket",
            }
            try:
                await session.start()
            except BackendError as exc:
                self.last_error = str(exc)
                self.bus.publish("session.failed", error=self.last_error)
                await backend.close()
                raise
            self.last_error = None
            self.session = session
            self.bus.publish(
                "session.started", session_id=ctx.session_id, model=options.model, mode="voice"
            )
            return self.status()

    def _ended(self, session: VoiceSession) -> None:
        if session.error:
            self.last_error = session.error
        if self.session is session:
            self._last["counters"] = self._counters(session)
            self.session = None
            self.bus.publish("mode", mode="text")

    async def stop(self) -> dict[str, Any]:
        """Idempotent: stopping when nothing runs is fine."""
        async with self._lock:
            session = self.session
            if session is not None:
                await session.close("stopped by API")
                self.session = None
            return self.status()

    async def aclose(self) -> None:
        """Stop the voice session; phone calls are hung up by the bridge's own aclose()."""
        await self.stop()

    @staticmethod
    def _counters(session: VoiceSession) -> dict[str, Any]:
        status = session.backend.status()
        return {**status.get("counters", {}), "responses": session.responses}

    def status(self) -> dict[str, Any]:
        session = self.session
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
            "counters": self._last.get("counters", {}),
            "calls": len(self.calls),
        }
        if session is not None and active:
            backend_status = session.backend.status()
            out.update(
                since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session.since)),
                session_id=backend_status.get("session_id") or session.ctx.session_id,
                counters=self._counters(session),
            )
        return out
