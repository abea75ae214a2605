"""pytest plugin: the `mock_realtime` fixture.

Enable it in a conftest.py at your test root::

    pytest_plugins = ["foreman.testing.pytest_plugin"]

then take `mock_realtime` in an async test: a started `MockRealtimeServer` on a free loopback
port with the default scenario. Replace `mock_realtime.scenario` (or `.faults`) before the
client connects to script it. Needs pytest-asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from foreman.testing.mock_realtime import MockRealtimeServer, Scenario


@pytest_asyncio.fixture
async def mock_realtime() -> AsyncIterator[MockRealtimeServer]:
    """A running mock Realtime server; `mock_realtime.url` is its ws:// URL."""
    server = MockRealtimeServer(Scenario(), host="127.0.0.1", port=0)
    async with server:
        yield server
