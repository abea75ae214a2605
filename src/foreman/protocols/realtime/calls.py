"""Function-call assembly keyed by `call_id`
(https://platform.openai.com/docs/guides/realtime-conversations, function calling).

Arguments stream as `response.function_call_arguments.delta` and finish with `.done` (the
whole JSON string). Calls may interleave when a reasoning model makes parallel calls. A call is
reported once, as `FunctionCallReady`: on `.done`, or, if that event was missed, on
`response.output_item.done` / `response.done` carrying the completed `function_call` item.
A call whose item ended `incomplete` (the response was cancelled mid-call) is never reported:
its arguments are cut short, and running it would act on half a request.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FunctionCallAssembler", "FunctionCallReady"]

_EMITTED_MEMORY = 1024  # call ids remembered to refuse duplicates; a session makes far fewer


@dataclass(frozen=True, slots=True)
class FunctionCallReady:
    """The model asked for a tool. Run it (after the gatekeeper), then send
    `ConversationItemCreate(function_call_output_item(call_id, output))` and, once the
    response that made the call is done, one `ResponseCreate()` (earlier, the service answers
    `conversation_already_has_active_response`)."""

    call_id: str
    name: str
    arguments: str  # raw JSON text from the model; parse it defensively, it may be invalid
    item_id: str
    response_id: str


@dataclass(slots=True)
class _Pending:
    name: str
    item_id: str
    response_id: str
    parts: list[str] = field(default_factory=list)


class FunctionCallAssembler:
    """Collects argument deltas per `call_id` and reports each finished call exactly once."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}
        self._emitted: OrderedDict[str, None] = OrderedDict()

    @property
    def pending_call_ids(self) -> tuple[str, ...]:
        """Calls that have started but are not complete yet."""
        return tuple(self._pending)

    def item_added(self, response_id: str, item: dict[str, Any]) -> None:
        """`response.output_item.added`: learn the name of a function call early."""
        call_id = _call_id(item)
        if call_id is None or call_id in self._emitted:
            return
        pending = self._pending.setdefault(
            call_id, _Pending(name="", item_id=_str(item.get("id")), response_id=response_id)
        )
        pending.name = pending.name or _str(item.get("name"))

    def delta(self, call_id: str, delta: str, item_id: str, response_id: str) -> None:
        """`response.function_call_arguments.delta`."""
        if call_id in self._emitted:
            return
        pending = self._pending.get(call_id)
        if pending is None:
            pending = self._pending[call_id] = _Pending("", item_id, response_id)
        pending.parts.append(delta)

    def done(
        self, call_id: str, name: str, arguments: str, item_id: str, response_id: str
    ) -> FunctionCallReady | None:
        """`response.function_call_arguments.done`: the whole call (its `arguments` win)."""
        pending = self._pending.pop(call_id, None)
        if call_id in self._emitted:
            return None
        if not arguments and pending is not None:
            arguments = "".join(pending.parts)
        if not name and pending is not None:
            name = pending.name
        return self._emit(FunctionCallReady(call_id, name, arguments, item_id, response_id))

    def item_done(self, response_id: str, item: dict[str, Any]) -> FunctionCallReady | None:
        """`response.output_item.done` (or an item of `response.done.output`): the fallback."""
        call_id = _call_id(item)
        if call_id is None:
            return None
        pending = self._pending.pop(call_id, None)
        if call_id in self._emitted or item.get("status") in ("incomplete", "in_progress"):
            return None
        arguments = item.get("arguments")
        if not isinstance(arguments, str):
            arguments = "".join(pending.parts) if pending is not None else ""
        name = _str(item.get("name")) or (pending.name if pending is not None else "")
        item_id = _str(item.get("id")) or (pending.item_id if pending is not None else "")
        return self._emit(FunctionCallReady(call_id, name, arguments, item_id, response_id))

    def response_done(self, response: dict[str, Any]) -> list[FunctionCallReady]:
        """`response.done`: report completed calls not seen yet; forget the response's rest."""
        response_id = _str(response.get("id"))
        ready = []
        output = response.get("output")
        for item in output if isinstance(output, list) else ():
            if isinstance(item, dict) and (call := self.item_done(response_id, item)):
                ready.append(call)
        for call_id in [c for c, p in self._pending.items() if p.response_id == response_id]:
            del self._pending[call_id]  # cut short (cancelled or failed): never run half a call
        return ready

    def _emit(self, call: FunctionCallReady) -> FunctionCallReady:
        self._emitted[call.call_id] = None
        if len(self._emitted) > _EMITTED_MEMORY:
            self._emitted.popitem(last=False)
        return call


def _call_id(item: dict[str, Any]) -> str | None:
    if item.get("type") != "function_call":
        return None
    call_id = item.get("call_id")
    return call_id if isinstance(call_id, str) and call_id else None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
