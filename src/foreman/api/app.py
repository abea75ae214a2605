"""The FastAPI application factory: thin routes over the supervisor and its services.

Everything is built here, once, from settings: the event bus, the backend factory, the tool
services (specs, gatekeeper, approvals, audit log), the phone bridge, and the supervisor.
Building fails fast with a ConfigError (bad tools.d file, bad policy rule) before serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from foreman import __version__
from foreman.api import (
    routes_approvals,
    routes_chat,
    routes_events,
    routes_realtime,
    routes_tools,
    routes_twilio,
    routes_wake,
)
from foreman.api.auth import BearerTokenMiddleware
from foreman.api.hosts import LocalOriginMiddleware
from foreman.api.limits import install_limits
from foreman.api.native_memory import limit_arenas, trim
from foreman.api.openapi import describe_middleware
from foreman.api.server import DRAIN_LIMIT_S
from foreman.backends.factory import BackendFactory, make_backend_factory
from foreman.bus import EventBus
from foreman.chat.setup import build_chat_services
from foreman.clock import Clock, SystemClock
from foreman.config import Settings, is_loopback
from foreman.desk.service import DeskService
from foreman.endpoints.twilio import clip_limit_s
from foreman.phone.bridge import build_phone_services
from foreman.phone.drain import drain_calls
from foreman.session.registry import SHUTDOWN_REASON, SessionRegistry
from foreman.stores.embedded import (
    ORPHANED_APPROVAL_NOTE,
    Recovered,
    Stores,
    open_embedded_stores_now,
)
from foreman.stores.records import ApprovalRecord, AuditRecord
from foreman.tools.services import build_tool_services

log = logging.getLogger(__name__)


def _twilio_rest(settings: Settings) -> Any:
    tw = settings.twilio
    if not (tw.account_sid and tw.auth_token):
        return None
    from foreman.io.twilio_rest import TwilioRest

    return TwilioRest(tw.account_sid, tw.auth_token.get_secret_value(), api_base=tw.api_base)


def create_app(
    settings: Settings,
    *,
    backend_factory: BackendFactory | None = None,
    bus: EventBus | None = None,
    clock: Clock | None = None,
    twilio_rest: Any = None,
    stores: Stores | None = None,
) -> FastAPI:
    """Build everything from settings (ConfigError on any problem: a bad tools.d file, a bad
    policy rule, a database that cannot be opened) before serving."""
    bus = bus or EventBus()
    wall = (clock or SystemClock()).wall
    if stores is None:
        stores = open_embedded_stores_now(
            settings.storage.db_path, token_ttl_s=settings.twilio.stream_token_ttl_s
        )
    factory = backend_factory or make_backend_factory(settings)
    rest = twilio_rest if twilio_rest is not None else _twilio_rest(settings)
    tools = build_tool_services(
        settings,
        bus,
        clock=clock,
        twilio_client=rest,
        audit=stores.audit,
        approval_store=stores.approvals,
    )
    if not Path(settings.tools.dir).is_dir():
        log.warning("tools directory %s does not exist: the model has no tools", settings.tools.dir)
    elif "end_call" not in tools.specs:
        log.warning("no end_call tool in %s: the model cannot end calls", settings.tools.dir)
    chat = build_chat_services(
        settings,
        bus,
        clock or SystemClock(),
        stores.conversations,
        tools=tools.dispatcher,
        approvals=tools.approvals,
    )
    sessions = SessionRegistry(
        settings,
        bus,
        factory,
        tools=tools.dispatcher,
        catalog=tools.dispatcher,
        store=stores.sessions,
        history=chat.history,
    )
    desk = DeskService(settings, bus, sessions)
    twilio = build_phone_services(
        settings,
        bus,
        factory,
        sessions,
        tools=tools.dispatcher,
        catalog=tools.dispatcher,
        rest=rest,
        clock=clock,
        stores=stores,
    )

    async def drain(graceful: bool = True) -> None:
        """End the server's own work, before the HTTP server closes its connections (see
        `foreman.api.server`): no new calls; live calls get `[limits] shutdown_grace_s` to
        end (`graceful`), then a goodbye and a hang-up; the desk session ended; records
        written; then every event stream ended after the events still queued for it.
        Runs once: the lifespan's call after `foreman serve` drained does nothing."""
        if bus.closed:
            return
        try:
            await chat.stop_turns()
            if graceful:
                await drain_calls(
                    sessions,
                    twilio.goodbye,
                    grace_s=settings.limits.shutdown_grace_s,
                    reason=SHUTDOWN_REASON,
                )
            await sessions.aclose()
            await desk.aclose()  # after the desk session: it was using the microphone
            await twilio.records.flush()
        finally:  # even when the time ran out: no stream may keep the server up
            bus.close()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_arenas()  # before the worker threads: each would get an arena of its own
        recovered = await _recover(stores, wall())
        await chat.history.recover([s.id for s in recovered.sessions])
        await desk.start()  # the microphone and the wake sentinel, if there are some
        heartbeat = asyncio.create_task(
            _heartbeat(stores, wall, settings.storage.heartbeat_s, idle=lambda: not sessions),
            name="heartbeat",
        )
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        # Order matters: chat turns and sessions first (they may still run tools), then
        # the history they write to, then the services, then the stores they write to.
        # Under `foreman serve` the sessions have ended already (drain runs first);
        # elsewhere (tests) they end here, at once.
        await drain(graceful=False)
        await chat.aclose()
        await twilio.aclose()
        await tools.aclose()
        await stores.aclose()

    app = FastAPI(
        title="Foreman control API",
        version=__version__,
        description="Voice sessions, phone calls, text chat, history, tools and approvals.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.bus = bus
    app.state.sessions = sessions
    app.state.tools = tools
    app.state.twilio = twilio
    app.state.stores = stores
    app.state.drain = drain
    # The drain's own limit: the grace, the goodbye, the sessions' close, the records.
    app.state.drain_limit_s = (
        settings.limits.shutdown_grace_s + clip_limit_s(twilio.goodbye) + DRAIN_LIMIT_S
    )
    app.state.chat = chat
    app.state.desk = desk
    for module in (
        routes_realtime,
        routes_approvals,
        routes_events,
        routes_twilio,
        routes_chat,
        routes_wake,
    ):
        app.include_router(module.router)
    app.include_router(routes_tools.router)

    @app.exception_handler(RequestValidationError)
    async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The default handler echoes the offending input back: that can leak what a client
        # sent (a token in the wrong field) and crashes on bytes that are not UTF-8.
        detail = [
            {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.get("/api/health", tags=["meta"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    token = settings.server.api_token.get_secret_value() if settings.server.api_token else ""
    if token:
        app.add_middleware(BearerTokenMiddleware, token=token)
    loopback = is_loopback(settings.server.host)
    if loopback:
        allowed, tunnel = _own_host_names(settings, token=bool(token))
        app.add_middleware(LocalOriginMiddleware, allowed_hosts=allowed, tunnel_hosts=tunnel)
    describe_middleware(
        app,
        token=bool(token),
        loopback=loopback,
        rate_limited=settings.limits.api_rate_per_s > 0,
    )
    # Added last: runs first. A client over its rate or with too big a body costs nothing more.
    install_limits(app, settings.limits, (clock or SystemClock()).monotonic)
    return app


async def _recover(stores: Stores, now: float) -> Recovered:
    """Close what a crashed process left open, say so once, and leave an audit row for
    each approval prompt that expired unanswered (the tool was not run)."""
    recovered = await stores.recover(now)
    for call in recovered.calls:
        log.warning("call %s was interrupted by a crash; recorded as such", call.call_sid)
    for approval in recovered.approvals:
        await stores.audit.record(orphan_audit_row(approval))
    if recovered.approvals:
        log.warning(
            "%d approval prompt(s) left by a crash expired (nothing was run)",
            len(recovered.approvals),
        )
    return recovered


def orphan_audit_row(approval: ApprovalRecord) -> AuditRecord:
    """The audit row of a prompt a crash left unanswered, as the dispatcher writes one for
    a prompt that expired (decision `expired`, nothing run)."""
    answered_at = approval.answered_at if approval.answered_at is not None else 0.0
    return AuditRecord(
        at=answered_at,
        session_id=approval.session_id,
        caller=approval.caller_name or approval.caller_id,
        role=approval.role,
        channel=approval.channel,
        tool=approval.tool,
        call_id=approval.call_id,
        arguments=approval.arguments,
        decision=approval.state.value,
        reason=approval.note or ORPHANED_APPROVAL_NOTE,
        outcome="not run",
        approval_id=approval.id,
        wait_s=max(0.0, answered_at - approval.created_at),
    )


async def _heartbeat(
    stores: Stores, wall: Callable[[], float], every_s: float, *, idle: Callable[[], bool]
) -> None:
    """Note that the server is alive, now and every `every_s`: after a crash, the next
    start dates what was live to the last note. A failed note is logged, never fatal.
    While no session is live, also hand the allocator's free pages back to the system
    (`native_memory.trim`): what the busiest moment left free is not kept while idle."""
    while True:
        try:
            await stores.sessions.beat(wall())
        except Exception as exc:
            log.warning("heartbeat not stored: %s", exc)
        if idle():
            await asyncio.to_thread(trim)
        await asyncio.sleep(every_s)


def _own_host_names(settings: Settings, *, token: bool) -> tuple[list[str], list[str]]:
    """The names the API answers to besides loopback (the bind address, the operator's list,
    and with an API token the public host Twilio reaches it by), and the public host when it
    is not one of them: without a token, whoever finds the tunnel's URL must not get the API."""
    names = [settings.server.host, *settings.server.allowed_hosts]
    public = urlsplit(settings.twilio.public_url).hostname if settings.twilio.public_url else None
    if public and token:
        return [*names, public], []
    return names, [public] if public else []
