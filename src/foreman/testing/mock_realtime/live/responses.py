"""The Responses delegation's client events on the mock GPT-Live session: a function call's
output or a user message (`response.item.create`), and `response.create`, which continues
the backend once every pending call of a delegation has its output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from foreman.testing.mock_realtime import errors as E
from foreman.testing.mock_realtime.errors import ClientError
from foreman.testing.mock_realtime.scenario import Turn

if TYPE_CHECKING:
    from foreman.testing.mock_realtime.live.session import LiveMockSession

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Work:
    """Where a reply runs: under a delegation (None: the voice model speaks first), and
    whether the backend is already working (a typed turn, a continuation)."""

    delegation_id: str | None = None
    backend: bool = False


async def on_item_create(session: LiveMockSession, event: Event) -> None:
    E.only(event, ("item",))
    if session._delegation_type() != "responses":
        raise ClientError(
            E.error("invalid_request", "response.item.create requires Responses delegation.")
        )
    item = event.get("item")
    if not isinstance(item, dict):
        raise ClientError(E.invalid_type("item", "an object", item))
    if item.get("type") == "function_call_output":
        call_id, output = item.get("call_id"), item.get("output")
        if not isinstance(output, str):
            raise ClientError(E.invalid_type("item.output", "a string", output))
        for calls in session._awaiting.values():
            if call_id in calls:
                calls[call_id] = output
                return
        raise ClientError(
            E.error("invalid_value", f"No pending function call {call_id!r}.", param="item")
        )
    if item.get("type", "message") == "message" and item.get("role") == "user":
        content = item.get("content")
        parts = content if isinstance(content, list) else [{"text": content}]
        session._typed.append(
            " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
        )
        return
    raise ClientError(E.invalid_value("item.type", item.get("type")))


async def on_response_create(session: LiveMockSession, event: Event) -> None:
    E.only(event, ())
    if session._delegation_type() != "responses":
        raise ClientError(
            E.error("invalid_request", "response.create requires Responses delegation.")
        )
    for delegation_id, calls in reversed(list(session._awaiting.items())):
        if all(output is not None for output in calls.values()):
            del session._awaiting[delegation_id]
            name = session._call_names.get(next(reversed(calls)), "")
            work = Work(delegation_id or None, backend=True)
            session._enqueue(Turn("tool_output", tool_name=name), work)
            return
    if session._awaiting:
        raise ClientError(
            E.error(
                "missing_function_call_output",
                "Every pending function call needs an output before response.create.",
            )
        )
    text = " ".join(session._typed)
    session._typed.clear()
    session._enqueue(Turn("text", text), Work(None, backend=True))
