"""The whole phone stack on loopback: fake Twilio caller <-> real app (uvicorn) <-> mock
Realtime server, plus the Twilio REST stand-in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from twilio_app import ACCOUNT, PUBLIC, TOKEN

from foreman.api.app import create_app
from foreman.bus import Subscription
from foreman.config import (
    IdentityConfig,
    Settings,
    StorageConfig,
    settings_from_dict,
)
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


def phone_app(settings: Settings) -> FastAPI:
    """The real app: `create_app` wires the phone routes and the real tool dispatcher."""
    return create_app(settings)


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
        # The cloud path: without a key the offline engine would otherwise take the call.
        s = settings_from_dict({"realtime": rt, "local": {"use": "never"}})
        s = s.replace(
            twilio=s.twilio.model_copy(
                update={
                    "account_sid": ACCOUNT,
                    "auth_token": SecretStr(TOKEN),
                    "public_url": PUBLIC,
                    "from_number": "+15550009999",
                    "api_base": rest.base_url,
                    **(twilio or {}),
                }
            ),
            identity=identity or IdentityConfig(),
        )
        if tools_db is not None:
            s = s.replace(storage=StorageConfig(db_path=tools_db))
        app = phone_app(s)
        events = app.state.bus.subscribe(maxsize=100_000)
        async with serve_app(app) as base:
            yield Stack(app, base, mock, rest, events, s)
        rest_client = app.state.twilio.rest
        if rest_client is not None:
            await rest_client.aclose()
