"""The whole phone stack on loopback: fake Twilio caller <-> real app (uvicorn) <-> mock
Realtime server, plus the Twilio REST stand-in."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from twilio_app import ACCOUNT, PUBLIC, TOKEN

from foreman.api.app import create_app
from foreman.backends.factory import make_backend_factory
from foreman.config import (
    IdentityConfig,
    Secret,
    Settings,
    StorageConfig,
    settings_from_dict,
)
from foreman.session.bus import Subscription
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import MockRealtimeServer, Scenario
from foreman.testing.server import serve_app
from foreman.testing.twilio_rest_standin import TwilioRestStandIn


@dataclass
class Stack:
    app: FastAPI
    base: str
    mock: MockRealtimeServer
    rest: TwilioRestStandIn
    events: Subscription
    settings: Settings

    def caller(self, **kw: Any) -> FakeTwilioCaller:
        kw.setdefault("account_sid", ACCOUNT)
        return FakeTwilioCaller(server_http=self.base, public_url=PUBLIC, auth_token=TOKEN, **kw)

    @property
    def twilio(self) -> Any:
        return self.app.state.twilio


def phone_app(settings: Settings, *, with_tools: bool = False) -> FastAPI:
    """`create_app` with the phone routes (added here until the app factory wires them)."""
    app = create_app(settings)
    if getattr(app.state, "twilio", None) is None:
        from foreman.api.routes_twilio import build_twilio_services, router

        dispatcher = None
        if with_tools:
            from foreman.tools.services import build_tool_services

            dispatcher = build_tool_services(settings, app.state.bus).dispatcher
        app.include_router(router)
        app.state.twilio = build_twilio_services(
            settings, app.state.bus, make_backend_factory(settings), dispatcher
        )
    return app


@contextlib.asynccontextmanager
async def phone_stack(
    scenario: Scenario,
    *,
    identity: IdentityConfig | None = None,
    realtime: dict[str, Any] | None = None,
    twilio: dict[str, Any] | None = None,
    tools_db: str | None = None,
) -> AsyncIterator[Stack]:
    """With `tools_db` (an audit database path), the real tool dispatcher is wired in."""
    async with MockRealtimeServer(scenario) as mock, TwilioRestStandIn(ACCOUNT, TOKEN) as rest:
        rt = {"endpoint": mock.url, **(realtime or {})}
        s = settings_from_dict({"realtime": rt})
        s = s.replace(
            twilio=dataclasses.replace(
                s.twilio,
                account_sid=ACCOUNT,
                auth_token=Secret(TOKEN),
                public_url=PUBLIC,
                from_number="+15550009999",
                api_base=rest.base_url,
                **(twilio or {}),
            ),
            identity=identity or IdentityConfig(),
        )
        if tools_db is not None:
            s = s.replace(storage=StorageConfig(db_path=tools_db))
        app = phone_app(s, with_tools=tools_db is not None)
        events = app.state.bus.subscribe(maxsize=100_000)
        async with serve_app(app) as base:
            yield Stack(app, base, mock, rest, events, s)
        rest_client = app.state.twilio.rest
        if rest_client is not None:
            await rest_client.aclose()
