"""Every GPT-Live mock started in a test is checked at teardown against the official SDK:
each server event it sent validates against `openai.types.live.ServerEvent` (tagged on
`type`; a nested `response.event` against `ResponseStreamEvent`), and each client event
Foreman sent validates against `ClientEvent` with no field the model does not know (the
service rejects unknown fields, the SDK models would let them pass) and against
`ClientEventParam` (which catches a missing required key such as `delegation_id`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pydantic
import pytest
from openai.types.live import ClientEvent, ClientEventParam, ServerEvent
from openai.types.responses.response_stream_event import ResponseStreamEvent

from foreman.testing.mock_realtime import MockRealtimeServer

SERVER_EVENT = pydantic.TypeAdapter(Annotated[ServerEvent, pydantic.Field(discriminator="type")])
CLIENT_EVENT = pydantic.TypeAdapter(Annotated[ClientEvent, pydantic.Field(discriminator="type")])
CLIENT_PARAM: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ClientEventParam)
NESTED = pydantic.TypeAdapter(Annotated[ResponseStreamEvent, pydantic.Field(discriminator="type")])


def extras(model: Any, where: str = "") -> list[str]:
    """Every field, at any depth, that the SDK model does not declare."""
    found: list[str] = []
    if isinstance(model, pydantic.BaseModel):
        found += [f"{where}.{k}" for k in (model.model_extra or {})]
        for name in type(model).model_fields:
            found += extras(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list | tuple):
        for i, item in enumerate(model):
            found += extras(item, f"{where}[{i}]")
    return found


def client_event_problems(event: dict[str, Any]) -> list[str]:
    try:
        model = CLIENT_EVENT.validate_python(event)
        CLIENT_PARAM.validate_python(event)
    except pydantic.ValidationError as exc:
        return [f"{event.get('type')}: {exc.errors()[:2]}"]
    return [f"{event.get('type')}: unknown field {x}" for x in extras(model)]


def server_event_problems(event: dict[str, Any]) -> list[str]:
    try:
        SERVER_EVENT.validate_python(event)
        if event.get("type") == "response.event":
            NESTED.validate_python(event["event"])
    except pydantic.ValidationError as exc:
        return [f"{event.get('type')}: {exc.errors()[:2]}"]
    return []


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
