"""Every GPT-Live mock started in a test is checked at teardown against the official SDK
(see `live_wire`): the events it sent and the events Foreman sent it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live_wire import client_event_problems, server_event_problems

from foreman.testing.mock_realtime import MockRealtimeServer


@pytest.fixture(autouse=True)
def validate_live_wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    started: list[MockRealtimeServer] = []
    original = MockRealtimeServer.start

    async def recording_start(self: MockRealtimeServer) -> None:
        started.append(self)
        await original(self)

    monkeypatch.setattr(MockRealtimeServer, "start", recording_start)
    yield
    problems: list[str] = []
    for server in started:
        for session in server.live_sessions:
            problems += [f"mock internal error: {e!r}" for e in session.internal_errors]
            for event in session.sent:
                problems += server_event_problems(event)
            for event in session.received:
                problems += client_event_problems(event)
    assert not problems, "GPT-Live wire problems:\n" + "\n".join(problems[:20])
