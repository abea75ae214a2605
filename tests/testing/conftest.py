"""Fixtures for the mock server tests.

Every server event any mock sends during a test is validated against the official SDK union
`openai.types.realtime.RealtimeServerEvent` (tagged on `type`) at teardown.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pydantic
import pytest
import pytest_asyncio
from openai.types.realtime import RealtimeServerEvent
from websockets.asyncio.client import ClientConnection, connect

from foreman.testing.mock_realtime import MockRealtimeServer
from foreman.testing.pytest_plugin import mock_realtime  # noqa: F401 - the shipped fixture

TIMEOUT_SCALE = float(os.environ.get("FOREMAN_TEST_TIMEOUT_SCALE", "1"))


def unit(seconds: float) -> float:
    """A test timeout, scaled for slow CI machines (as in tests/conftest.py)."""
    return seconds * TIMEOUT_SCALE


SERVER_EVENT = pydantic.TypeAdapter(
    Annotated[RealtimeServerEvent, pydantic.Field(discriminator="type")]
)

_servers: list[MockRealtimeServer] = []


@pytest.fixture(autouse=True)
def validate_every_server_event(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Record every server started in the test; validate all it sent at teardown."""
    started: list[MockRealtimeServer] = []
    original = MockRealtimeServer.start

    async def recording_start(self: MockRealtimeServer) -> None:
        started.append(self)
        await original(self)

    monkeypatch.setattr(MockRealtimeServer, "start", recording_start)
    yield
    problems = []
    for server in started:
        for session in server.sessions:
            problems += [f"mock internal error: {e!r}" for e in session.internal_errors]
            for event in session.sent:
                try:
                    SERVER_EVENT.validate_python(event)
                except pydantic.ValidationError as exc:
                    problems.append(f"{event.get('type')}: {exc.errors()[:2]}")
    assert not problems, "events that do not validate against RealtimeServerEvent:\n" + "\n".join(
        problems
    )


class Client:
    """A thin test client: JSON in and out, with waits that never sleep."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109 - a timeout is the API
        raw = await asyncio.wait_for(self.ws.recv(), unit(timeout))
        event = json.loads(raw)
        self.events.append(event)
        return event

    async def until(self, type: str, timeout: float = 5.0) -> list[dict[str, Any]]:  # noqa: ASYNC109 - a timeout is the API
        """Events received up to and including the first `type`."""
        got = []
        async with asyncio.timeout(unit(timeout)):
            while True:
                event = await self.recv(timeout)
                got.append(event)
                if event["type"] == type:
                    return got

    async def append(self, pcm: bytes, chunk: int = 4800) -> None:
        for i in range(0, len(pcm), chunk):
            await self.send(
                {
                    "type": "input_audio_buffer.append",
                    "audio": base64.b64encode(pcm[i : i + chunk]).decode(),
                }
            )


@pytest_asyncio.fixture
async def client(mock_realtime: MockRealtimeServer) -> AsyncIterator[Client]:  # noqa: F811
    """A client connected to the shared `mock_realtime` fixture, past `session.created`."""
    # max_queue=None: a test that stops reading mid-response must still close promptly
    async with connect(
        mock_realtime.url + "?model=gpt-realtime-2.1", max_size=None, max_queue=None
    ) as ws:
        c = Client(ws)
        first = await c.recv()
        assert first["type"] == "session.created"
        yield c


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]
