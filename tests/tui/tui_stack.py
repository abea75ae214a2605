"""What the console tests drive: the real app served on loopback with the mock Realtime model,
the Twilio REST stand-in and fake Twilio callers; and the console itself under Pilot."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from pydantic import SecretStr
from textual.pilot import Pilot
from textual.widgets import Input

from foreman.api.app import create_app
from foreman.client import ForemanClient
from foreman.config import IdentityConfig, Settings, settings_from_dict
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn
from foreman.tui.app import ForemanApp

ACCOUNT = "AC" + "4" * 32
TWILIO_TOKEN = "tw-token-for-console-tests"
PUBLIC = "https://voice.example.com"
ANN = "+15550000111"
GREETING = "Hello Ann, Foreman here."

SCENARIO = Scenario(
    [
        Rule(Match(instructions="Greet"), Reply.say(GREETING)),
        Rule(
            Match.user_text("text Ann"), Reply.call("send_sms", {"to": ANN, "body": "Running late"})
        ),
        Rule(Match.tool("send_sms"), Reply.say("I have dealt with the message.")),
        Rule(Match.user_text("hello"), Reply.say("Hi there, I am the mock.")),
    ]
)


@dataclasses.dataclass
class Stack:
    url: str
    app: Any
    mock: MockRealtimeServer
    rest: TwilioRestStandIn
    settings: Settings

    def caller(self, **kw: Any) -> FakeTwilioCaller:
        return FakeTwilioCaller(
            server_http=self.url,
            public_url=PUBLIC,
            auth_token=TWILIO_TOKEN,
            account_sid=ACCOUNT,
            **kw,
        )


def stack_settings(mock_url: str, rest_url: str, chat_url: str | None = None) -> Settings:
    # Without a chat server there is no text chat: the offline engine's local model is off too.
    chat = {"chat": {"base_url": chat_url}} if chat_url else {"local": {"use": "never"}}
    s = settings_from_dict({"realtime": {"endpoint": mock_url}, **chat})
    return s.replace(
        twilio=s.twilio.model_copy(
            update={
                "account_sid": ACCOUNT,
                "auth_token": SecretStr(TWILIO_TOKEN),
                "api_base": rest_url,
                "public_url": PUBLIC,
                "from_number": "+15550009999",
            }
        ),
        identity=IdentityConfig(contacts={"Ann": ANN}),
    )


@contextlib.asynccontextmanager
async def serve_stack(
    scenario: Scenario = SCENARIO,
    extend: Callable[[Any], None] | None = None,
    chat_url: str | None = None,
) -> AsyncIterator[Stack]:
    """The stack on loopback; `extend(app)` may add routes before it is served; `chat_url`
    is a Chat Completions server for text chat (without it chat has no model)."""
    async with (
        MockRealtimeServer(scenario) as mock,
        TwilioRestStandIn(ACCOUNT, TWILIO_TOKEN) as rest,
    ):
        settings = stack_settings(mock.url, rest.base_url, chat_url)
        app = create_app(settings)
        if extend is not None:
            extend(app)
        async with serve_app(app) as url:
            yield Stack(url, app, mock, rest, settings)


@contextlib.asynccontextmanager
async def console(
    url: str, retry_delays: Sequence[float] = (0.05, 0.1, 0.2)
) -> AsyncIterator[tuple[ForemanApp, Pilot[None]]]:
    """The console against `url`, under Pilot, connected."""
    app = ForemanApp(ForemanClient(url, token="", timeout=unit(10)), retry_delays=retry_delays)
    async with app.run_test(size=(120, 40)) as pilot:
        yield app, pilot


async def until(app: ForemanApp, pilot: Pilot[None], predicate: Callable[[], bool]) -> None:
    """Wait (on the console's own change notices) until `predicate()` holds, then let the
    screen catch up."""
    try:
        async with asyncio.timeout(unit(10)):
            await app.until(predicate)
    except TimeoutError:
        raise AssertionError(f"never true; the log says: {app.log_lines[-8:]}") from None
    await pilot.pause()


async def type_text(pilot: Pilot[None], text: str) -> None:
    """Put `text` into the focused input, as if typed. (Pilot's own key presses wait for the
    process to go idle after each key: a sentence would cost seconds on a busy machine.)"""
    field = pilot.app.focused
    assert isinstance(field, Input), f"typing needs an input in focus, not {field!r}"
    field.insert_text_at_cursor(text)
    await pilot.pause()


async def until_said(app: ForemanApp, pilot: Pilot[None], text: str) -> None:
    """Wait until the transcript on show has `text`."""
    await until(app, pilot, lambda: text in app.transcript_text)
