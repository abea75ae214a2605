"""No server, then the server back: the console says so, retries by itself (or at once on
`r`), and reads the state again (here: a voice session that started while it was away)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

from textual.pilot import Pilot
from tui_stack import ACCOUNT, SCENARIO, TWILIO_TOKEN, console, stack_settings, until

from foreman.api.app import create_app
from foreman.config import Settings
from foreman.session.registry import StartRequest
from foreman.testing.mock_realtime import MockRealtimeServer
from foreman.testing.server import serve_app
from foreman.testing.twilio_rest_standin import TwilioRestStandIn
from foreman.tui.app import ForemanApp
from foreman.tui.screens import OfflineScreen


@contextlib.asynccontextmanager
async def server_goes_away(
    retry_delays: Sequence[float],
) -> AsyncIterator[tuple[ForemanApp, Pilot[None], Settings, int]]:
    """A console connected to a server that then stops; yields once the console shows that
    nothing answers (the settings and port to bring a server back with)."""
    async with (
        MockRealtimeServer(SCENARIO) as mock,
        TwilioRestStandIn(ACCOUNT, TWILIO_TOKEN) as rest,
    ):
        settings = stack_settings(mock.url, rest.base_url)
        first = serve_app(create_app(settings), grace_s=0.2)
        url = await first.__aenter__()
        async with console(url, retry_delays) as (app, pilot):
            await until(app, pilot, lambda: app.model.connected and app.model.status is not None)
            assert "mode TEXT" in app.header_text and "● connected" in app.header_text
            await first.__aexit__(None, None, None)
            await until(app, pilot, lambda: "cannot reach foreman" in (app.model.error or ""))
            assert isinstance(app.screen, OfflineScreen)
            assert f"No Foreman server answers\n\n{url}" in app.screen.text
            assert "(is `foreman serve` running?)" in app.screen.text
            assert "○ no server" in app.header_text
            yield app, pilot, settings, urlsplit(url).port or 0


async def back_with_voice_on(settings: Settings) -> object:
    """The server's app again, with a voice session started before anyone is connected."""
    again = create_app(settings)
    await again.state.sessions.start_desk(StartRequest())
    return again


async def test_server_down_and_back_by_itself() -> None:
    async with server_goes_away((0.05, 0.1, 0.2)) as (app, pilot, settings, port):
        again = await back_with_voice_on(settings)
        async with serve_app(again, port=port, grace_s=0.2):
            await until(app, pilot, lambda: "mode VOICE" in app.header_text)
            # Read again, not told: the mode changed before this console subscribed.
            assert app.model.connected and not isinstance(app.screen, OfflineScreen)
            assert "connection lost: what is said meanwhile is missing" in app.transcript_text
            assert "reconnected" in app.transcript_text


async def test_r_retries_at_once() -> None:
    async with server_goes_away((0.05, 60.0)) as (app, pilot, settings, port):
        screen = app.screen
        assert isinstance(screen, OfflineScreen)
        await until(app, pilot, lambda: "(2 attempts so far)" in screen.text)  # 60 s to go
        again = await back_with_voice_on(settings)
        async with serve_app(again, port=port, grace_s=0.2):
            await pilot.press("r")
            await until(app, pilot, lambda: "mode VOICE" in app.header_text)
            assert not isinstance(app.screen, OfflineScreen)
