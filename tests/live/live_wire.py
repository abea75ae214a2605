"""Checks of the GPT-Live wire against the official SDK (used by conftest and the tests).

Every GPT-Live mock started in a test is checked at teardown against the official SDK:
each server event it sent validates against `openai.types.live.ServerEvent` (tagged on
`type`; a nested `response.event` against `ResponseStreamEvent`), and each client event
Foreman sent validates against `ClientEvent` with no field the model does not know (the
service rejects unknown fields, the SDK models would let them pass) and against
`ClientEventParam` (which catches a missing required key such as `delegation_id`)."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from openai.types.live import ClientEvent, ClientEventParam, ServerEvent
from openai.types.responses.response_stream_event import ResponseStreamEvent

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
