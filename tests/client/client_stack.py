"""The real app, served on loopback, with the bundled mock Realtime model and the Twilio REST
stand-in: what `ForemanClient` and the command-line tools talk to in these tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest_asyncio
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.bus import EventBus, Subscription
from foreman.config import Settings, settings_from_dict
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.server import serve_app
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

ACCOUNT = "AC" + "3" * 32
TWILIO_TOKEN = "tw-token-for-client-tests"
ANN = "+15550000111"

SCENARIO = Scenario(
    [
        Rule(Match.user_text("hello"), Reply.say("Hi there, I am the mock.")),
        Rule(
            Match.user_text("text Ann"), Reply.call("send_sms", {"to": ANN, "body": "Running late"})
        ),
        Rule(Match.tool("send_sms"), Reply.say("Done, your message is on its way.")),
    ]
)


class WatchedBus(EventBus):
    """An event bus that says when the SSE route has subscribed, so a test publishes nothing
    before the stream can see it."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed = asyncio.Event()

    def subscribe(self, maxsize: int = 256, kinds: Iterable[str] = ()) -> Subscription:
        sub = super().subscribe(maxsize, kinds)
        self.subscribed.set()
        return sub


@dataclasses.dataclass
class Stack:
    url: str
    app: Any
    bus: WatchedBus
    mock: MockRealtimeServer
    rest: TwilioRestStandIn


def stack_settings(
    mock_url: str, rest_url: str, realtime: dict[str, Any] | None = None, **server: object
) -> Settings:
    rt = {"endpoint": mock_url, **(realtime or {})}
    # No chat model here: the offline engine's local model is turned off too.
    s = settings_from_dict({"realtime": rt, "server": dict(server), "local": {"use": "never"}})
    return s.replace(
        twilio=s.twilio.model_copy(
            update={
                "account_sid": ACCOUNT,
                "auth_token": SecretStr(TWILIO_TOKEN),
                "api_base": rest_url,
                "public_url": "https://voice.example.com",
                "from_number": "+15550009999",
            }
        )
    )


@contextlib.asynccontextmanager
async def serve_stack(
    scenario: Scenario = SCENARIO, *, realtime: dict[str, Any] | None = None, **server: object
) -> AsyncIterator[Stack]:
    """The stack on loopback; `realtime` and `server` go to those settings sections (e.g.
    `api_token`)."""
    async with (
        MockRealtimeServer(scenario) as mock,
        TwilioRestStandIn(ACCOUNT, TWILIO_TOKEN) as rest,
    ):
        bus = WatchedBus()
        settings = stack_settings(mock.url, rest.base_url, realtime, **server)
        app = create_app(settings, bus=bus)
        async with serve_app(app) as url:
            yield Stack(url, app, bus, mock, rest)


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    async with serve_stack() as served:
        yield served
