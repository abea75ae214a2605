"""The FastAPI application factory: thin routes over the supervisor and its services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from foreman import __version__
from foreman.api import routes_realtime
from foreman.api.auth import BearerTokenMiddleware
from foreman.backends.factory import BackendFactory, make_backend_factory
from foreman.config import Settings
from foreman.session.bus import EventBus
from foreman.session.supervisor import Supervisor

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    backend_factory: BackendFactory | None = None,
    bus: EventBus | None = None,
) -> FastAPI:
    bus = bus or EventBus()
    factory = backend_factory or make_backend_factory(settings)
    supervisor = Supervisor(settings, bus, factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await supervisor.aclose()

    app = FastAPI(
        title="Foreman control API",
        version=__version__,
        description="Realtime voice sessions, phone calls, tools and approvals.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.bus = bus
    app.state.supervisor = supervisor
    app.include_router(routes_realtime.router)

    @app.get("/api/health", tags=["meta"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    if settings.server.api_token:
        app.add_middleware(BearerTokenMiddleware, token=settings.server.api_token.reveal())
    return app
