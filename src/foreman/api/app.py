"""The FastAPI application factory: thin routes over the supervisor and its services.

Everything is built here, once, from settings: the event bus, the backend factory, the tool
services (specs, gatekeeper, approvals, audit log), the phone bridge, and the supervisor.
Building fails fast with a ConfigError (bad tools.d file, bad policy rule) before serving.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
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
from foreman.api.openapi import describe_middleware
from foreman.backends.factory import BackendFactory, make_backend_factory
from foreman.bus import EventBus
from foreman.chat.setup import build_chat_services
from foreman.clock import Clock, SystemClock
from foreman.config import Settings, is_loopback
from foreman.desk.service import DeskService
from foreman.phone.bridge import build_phone_services
from foreman.session.registry import SessionRegistry
from foreman.stores.embedded import Recovered, Stores, open_embedded_stores_now
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

    async def drain() -> None:
        """End the server's own work, before the HTTP server closes its connections (see
        `foreman.api.server`): calls hung up and the desk session ended (their records
        written), then every event stream ended after the events still queued for it.
        Runs once: the lifespan's call after `foreman serve` drained does nothing."""
        if bus.closed:
            return
        try:
            await chat.stop_turns()
            await sessions.aclose()
            await desk.aclose()  # after the desk session: it was using the microphone
            await twilio.records.flush()
        finally:  # even when the time ran out: no stream may keep the server up
            bus.close()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        recovered = await _recover(stores, wall())
        await chat.history.recover([s.id for s in recovered.sessions])
        await desk.start()  # the microphone and the wake sentinel, if there are some
        yield
        # Order matters: chat turns and sessions first (they may still run tools), then
        # the history they write to, then the services, then the stores they write to.
        # Under `foreman serve` the sessions have ended already (drain runs first);
        # elsewhere (tests) they end here.
        await drain()
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
        app.add_middleware(LocalOriginMiddleware, allowed_hosts=_own_host_names(settings))
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
    """Close what a crashed process left open, and say so once."""
    recovered = await stores.recover(now)
    for call in recovered.calls:
        log.warning("call %s was interrupted by a crash; recorded as such", call.call_sid)
    if recovered.approvals:
        log.warning(
            "%d approval prompt(s) left by a crash expired (nothing was run)",
            len(recovered.approvals),
        )
    return recovered


def _own_host_names(settings: Settings) -> list[str]:
    """The names this server answers to besides loopback: the bind address, the operator's
    list, and the public host Twilio reaches it by."""
    names = [settings.server.host, *settings.server.allowed_hosts]
    public = urlsplit(settings.twilio.public_url).hostname if settings.twilio.public_url else None
    if public:
        names.append(public)
    return names
