"""The whole phone stack on loopback with the voice API chosen by config: fake Twilio caller
<-> the real app (uvicorn) <-> the mock server (Realtime or GPT-Live path), plus the Twilio
REST stand-in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.bus import Subscription
from foreman.config import IdentityConfig, Settings, StorageConfig, settings_from_dict
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import MockRealtimeServer, Scenario
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

ACCOUNT = "AC" + "b" * 32
TOKEN = "twilio-auth-token-for-live-tests"
PUBLIC = "https://voice.example.com"


@dataclass
class LiveStack:
    app: Any
    base: str
    mock: MockRealtimeServer
    rest: TwilioRestStandIn
    events: Subscription
    settings: Settings

    def caller(self, **kw: Any) -> FakeTwilioCaller:
        kw.setdefault("account_sid", ACCOUNT)
        kw.setdefault("continuous_silence", True)  # as Twilio does: media flows all call long
        return FakeTwilioCaller(server_http=self.base, public_url=PUBLIC, auth_token=TOKEN, **kw)

    async def bus(
        self,
        kind: str,
        pred: Callable[[dict[str, Any]], bool] = lambda d: True,
        timeout: float = 15.0,  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
    ) -> dict[str, Any]:
        async with asyncio.timeout(unit(timeout)):
            while True:
                event = await self.events.get()
                if event.kind == kind and pred(event.data):
                    return dict(event.data)


def stack_settings(
    mock: MockRealtimeServer,
    api: str,
    realtime: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The only difference between a Realtime and a GPT-Live deployment: the config."""
    return {
        "realtime": {"api": api, "endpoint": mock.url, **(realtime or {})},
        "live": {"endpoint": mock.live_url, **(live or {})},
    }


@contextlib.asynccontextmanager
async def live_phone_stack(
    scenario: Scenario,
    *,
    api: str = "live",
    identity: IdentityConfig | None = None,
    tools_db: str | None = None,
    realtime: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
) -> AsyncIterator[LiveStack]:
    async with MockRealtimeServer(scenario) as mock, TwilioRestStandIn(ACCOUNT, TOKEN) as rest:
        s = settings_from_dict(stack_settings(mock, api, realtime, live))
        s = s.replace(
            twilio=s.twilio.model_copy(
                update={
                    "account_sid": ACCOUNT,
                    "auth_token": SecretStr(TOKEN),
                    "public_url": PUBLIC,
                    "from_number": "+15550009999",
                    "api_base": rest.base_url,
                }
            ),
            identity=identity or IdentityConfig(),
        )
        if tools_db is not None:
            s = s.replace(storage=StorageConfig(db_path=tools_db))
        app = create_app(s)
        events = app.state.bus.subscribe(maxsize=100_000)
        async with serve_app(app) as base:
            yield LiveStack(app, base, mock, rest, events, s)
        if app.state.twilio.rest is not None:
            await app.state.twilio.rest.aclose()
