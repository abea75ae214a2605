"""`ToolCallFlow`: every decision about one tool call, without I/O.

    ToolRequest ─> prepare: known tool? available? JSON object? schema? ─ no ─> Rejected (an
                   error output the model can act on)
                ─> decide: Gatekeeper ─> Allow | Deny | NeedsApproval
    NeedsApproval ─> pending_note (what the model is told while the output is withheld)
                  ─> settle(final approval) ─> run it, or the output saying why not

The asyncio side (`ToolDispatcher`) asks these questions in order and does the waiting,
running and sending; nothing here awaits, reads a clock or touches the bus.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from foreman.exceptions import ToolArgumentsInvalid
from foreman.policy.approvals import Approval, ApprovalState
from foreman.policy.context import CallContext
from foreman.policy.decision import Decision, NeedsApproval, ToolCall
from foreman.policy.gatekeeper import Gatekeeper
from foreman.tools.outputs import Outcome, error_output
from foreman.tools.request import ToolRequest
from foreman.tools.spec import ToolSpec

__all__ = ["Prepared", "Rejected", "Run", "ToolCallFlow"]


@dataclass(frozen=True, slots=True)
class Rejected:
    """The call cannot be run as asked; `message` tells the model how to correct it."""

    message: str
    arguments: Any  # what the model sent, for the audit log
    decision: str = "invalid"  # for the audit log: "invalid" or "unavailable"


@dataclass(frozen=True, slots=True)
class Prepared:
    spec: ToolSpec
    call: ToolCall


@dataclass(frozen=True, slots=True)
class Run:
    """The approval said yes: run the tool."""


class ToolCallFlow:
    def __init__(
        self,
        specs: Mapping[str, ToolSpec],
        gatekeeper: Gatekeeper,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        """`unavailable`: tool name -> why it cannot run here (its service is not set up)."""
        self.specs = dict(specs)
        self.gatekeeper = gatekeeper
        self.unavailable = dict(unavailable or {})

    def offered(self, ctx: CallContext) -> list[ToolSpec]:
        """The tools this caller may be offered: available ones only, and an unknown caller
        never sees high risk."""
        return [
            s
            for s in self.specs.values()
            if s.name not in self.unavailable and self.gatekeeper.offered(s.name, s.risk, ctx)
        ]

    def prepare(self, request: ToolRequest) -> Prepared | Rejected:
        spec = self.specs.get(request.name)
        raw = _raw_args(request.arguments)
        if spec is None:
            available = sorted(set(self.specs) - set(self.unavailable))
            return Rejected(
                f"unknown tool {request.name!r}; available: {', '.join(available)}", raw
            )
        if spec.name in self.unavailable:
            why = self.unavailable[spec.name]
            return Rejected(f"not available: {why}", raw, decision="unavailable")
        try:
            arguments = _parse(request.arguments or "{}")
        except (ValueError, TypeError, RecursionError) as exc:
            return Rejected(f"arguments are not valid JSON{_why(exc)}; call again", raw)
        if not isinstance(arguments, dict):
            return Rejected("arguments must be a JSON object; call again", raw)
        try:
            spec.validate(arguments)
        except ToolArgumentsInvalid as exc:
            return Rejected(f"invalid arguments: {exc}; correct them and call again", arguments)
        return Prepared(spec, ToolCall(request.call_id, spec.name, arguments, spec.risk))

    def decide(self, prepared: Prepared, ctx: CallContext) -> Decision:
        return self.gatekeeper.decide(prepared.call, ctx)

    @staticmethod
    def pending_note(prepared: Prepared, decision: NeedsApproval) -> str:
        """What the model is told while the output is withheld: not done yet, say so."""
        args = json.dumps(prepared.call.arguments, ensure_ascii=False)
        note = (
            f"The {prepared.spec.name} action {args} is waiting for the owner's approval. "
            "It has NOT been done yet: do not say it is done. Tell the caller it needs approval; "
            "its result will arrive as the tool output."
        )
        if decision.voice_confirmable:
            note += (
                " You are speaking with the owner: read the action back in one sentence and ask "
                "for a clear yes or no. Their spoken answer decides."
            )
        return note

    @staticmethod
    def settle(final: Approval, timeout_s: float) -> Run | Outcome | None:
        """What an answered prompt means: run it, an output saying why not, or None when the
        session ended (cancelled: there is nobody to tell)."""
        if final.state is ApprovalState.APPROVED:
            return Run()
        if final.state is ApprovalState.DENIED:
            reason = "denied by owner" + (f": {final.note}" if final.note else "")
            return Outcome(False, error_output(reason + "; the action was NOT done"), "not run")
        if final.state is ApprovalState.EXPIRED:
            msg = f"approval timed out after {timeout_s:g} s; the action was NOT done"
            return Outcome(False, error_output(msg), "not run")
        return None


def _parse(text: str) -> Any:
    """Strict JSON: Python also reads NaN and Infinity, which slip through the schema's
    range checks (every comparison with NaN is False)."""
    return json.loads(text, parse_constant=_not_json)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _why(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f" ({exc.msg} at position {exc.pos})"
    if isinstance(exc, RecursionError):
        return " (nested too deeply)"
    if isinstance(exc, ValueError):  # NaN, or a number too long to convert
        return f" ({str(exc).split(':')[0]})"
    return ""


def _raw_args(text: Any) -> Any:
    try:
        return _parse(text)
    except (ValueError, TypeError, RecursionError):
        return text
