"""Delegation bookkeeping for Responses delegation, sans I/O.

The voice model hands work to the hosted Responses model (`session.delegation.created`, no
task text); the backend's stream comes back as `response.event` envelopes. Function calls
are collected from nested `response.output_item.done` events whose item is a *completed*
`function_call` (an arguments-done event lacks the name and call id, and the forwarded
`response.completed` has an empty `output`). Each call gets exactly one
`function_call_output`; once every call of a delegation has one, a single `response.create`
continues the backend. A delegation is claimed once (a repeated notice changes nothing), a
repeated call is not asked twice, and an output for a call that is not pending (stale, or
already answered) is dropped.

`busy` is true while the backend still owes something: a delegation announced whose
response has not started, a response that has not finished, a `response.create` not yet
answered, or a call without its output. The backend's result then flows into the voice
conversation by itself; `busy` turning false is not proof that anyone heard it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from foreman.protocols.live import client_events as ce

__all__ = ["DelegationDone", "Delegations", "FunctionCallRequested"]

TERMINAL: Final = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "response.cancelled"}
)
_NO_DELEGATION: Final = ""  # backend work the client asked for (a typed turn)


@dataclass(frozen=True, slots=True)
class FunctionCallRequested:
    call_id: str
    name: str
    arguments: str
    delegation_id: str | None


@dataclass(frozen=True, slots=True)
class DelegationDone:
    """The backend owes nothing more right now (no delegation runs, no call is pending)."""


@dataclass(slots=True)
class _Delegation:
    calls: dict[str, bool] = field(default_factory=dict)  # call_id -> answered
    continue_wanted: bool = False


class Delegations:
    def __init__(self) -> None:
        self._delegations: dict[str, _Delegation] = {}
        self._announced: set[str] = set()  # created, no response seen yet
        self._open: set[str] = set()  # response ids created, not finished
        self._requested = 0  # response.create sent, response.created not seen yet
        self._call_owner: dict[str, str] = {}  # unanswered call_id -> delegation key
        self._seen_calls: set[str] = set()
        self.counters: dict[str, int] = {
            "delegations": 0,
            "function_calls": 0,
            "outputs": 0,
            "continuations": 0,
            "stale_outputs": 0,
            "duplicate_notices": 0,
        }

    @property
    def busy(self) -> bool:
        return bool(self._announced or self._open or self._requested or self._call_owner)

    @property
    def in_flight(self) -> bool:
        """Backend work runs (announced, a response open or asked for); calls that only
        wait for their output do not count."""
        return bool(self._announced or self._open or self._requested)

    @property
    def pending_calls(self) -> frozenset[str]:
        return frozenset(self._call_owner)

    # --- from the server -------------------------------------------------------------------
    def created(self, delegation_id: str, target: str) -> list[Any]:
        """`session.delegation.created`: claim it once."""
        if delegation_id in self._delegations:
            self.counters["duplicate_notices"] += 1
            return []
        self._delegations[delegation_id] = _Delegation()
        self.counters["delegations"] += 1
        if target == "responses":  # a Responses delegation always streams a response
            self._announced.add(delegation_id)
        return []

    def envelope(self, delegation_id: str | None, event: Mapping[str, Any]) -> list[Any]:
        """One nested Responses event. Returns `FunctionCallRequested` / `DelegationDone`."""
        was_busy = self.busy
        key = delegation_id or _NO_DELEGATION
        self._delegations.setdefault(key, _Delegation())
        self._announced.discard(key)
        kind = event.get("type")
        out: list[Any] = []
        response = event.get("response")
        response_id = response.get("id") if isinstance(response, dict) else None
        if kind == "response.created":
            if self._requested:
                self._requested -= 1
            if isinstance(response_id, str):
                self._open.add(response_id)
        elif kind == "response.output_item.done":
            call = _completed_function_call(event.get("item"))
            if call is not None and call[0] not in self._seen_calls:
                call_id, name, arguments = call
                self._seen_calls.add(call_id)
                self._delegations[key].calls[call_id] = False
                self._call_owner[call_id] = key
                self.counters["function_calls"] += 1
                out.append(FunctionCallRequested(call_id, name, arguments, delegation_id))
        elif kind in TERMINAL and isinstance(response_id, str):
            self._open.discard(response_id)
        if was_busy and not self.busy:
            out.append(DelegationDone())
        return out

    # --- from the client -------------------------------------------------------------------
    def answer(self, call_id: str, output: str, *, continue_: bool) -> list[str]:
        """The call's one output: the frames to send (none for a stale call)."""
        key = self._call_owner.pop(call_id, None)
        if key is None:
            self.counters["stale_outputs"] += 1
            return []
        delegation = self._delegations[key]
        delegation.calls[call_id] = True
        delegation.continue_wanted = delegation.continue_wanted or continue_
        self.counters["outputs"] += 1
        frames = [ce.response_item_create(ce.function_call_output(call_id, output))]
        if all(delegation.calls.values()) and delegation.continue_wanted:
            delegation.continue_wanted = False
            frames.append(self.request_response())
            self.counters["continuations"] += 1
        return frames

    def request_response(self) -> str:
        """A `response.create` (after every output of a batch, or for a typed turn)."""
        self._requested += 1
        return ce.response_create()


def _completed_function_call(item: Any) -> tuple[str, str, str] | None:
    if not isinstance(item, dict) or item.get("type") != "function_call":
        return None
    if item.get("status", "completed") != "completed":
        return None
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments", "")
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(arguments, str):
        return None
    return call_id, name, arguments
