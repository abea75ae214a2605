"""The records the stores persist: plain frozen values, JSON-friendly, no behaviour.

Times are unix seconds (`clock.wall()`) unless a field says otherwise: a record outlives the
process that wrote it, and another process's monotonic clock means nothing. Dict fields
(`arguments`, `status`) must be JSON values; every store keeps a JSON copy, so what comes
back is what `json.loads(json.dumps(...))` gives (tuples come back as lists).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from foreman.policy.approvals import Approval, ApprovalState

INTERRUPTED_REASON = "interrupted (server stopped unexpectedly)"

SessionKind = Literal["phone", "desk", "chat"]
SESSION_KINDS: tuple[str, ...] = get_args(SessionKind)


def json_copy(value: Any, *, lenient: bool = False) -> Any:
    """`value` as it comes back from a JSON column. `lenient` turns what JSON cannot hold
    into strings (the audit log keeps whatever the model sent) instead of raising."""
    return json.loads(dumps(value, lenient=lenient))


def dumps(value: Any, *, lenient: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, default=str if lenient else None)


@dataclass(frozen=True)
class AuditRecord:
    """One tool decision (a row of `tool_audit`): when, who, which tool, what was decided."""

    at: float  # unix time (for people)
    session_id: str
    caller: str
    role: str
    channel: str
    tool: str
    call_id: str
    arguments: Any = field(hash=False)
    decision: str
    reason: str
    outcome: str
    approver: str | None = None
    approval_id: str | None = None
    wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One phone call. Live while `ended_at` is None; `reason` says how it ended.

    The positional order matches the record the call registry builds today, so a finished
    call can be built the same way."""

    call_sid: str
    direction: str  # "inbound" | "outbound"
    from_: str
    to: str
    role: str
    verified: bool
    started_at: float
    ended_at: float | None = None
    reason: str = ""
    purpose: str = ""

    @property
    def live(self) -> bool:
        return self.ended_at is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape `GET /api/calls` shows (`from` rather than `from_`)."""
        d = asdict(self)
        d["from"] = d.pop("from_")
        return d


@dataclass(frozen=True, slots=True)
class OutboundIntent:
    """A call we placed, kept until its media stream starts. `created` is on the clock the
    intent store was given (the monotonic clock for a per-process store)."""

    ref: str
    to: str
    purpose: str
    created: float
    call_sid: str = ""  # Twilio's CallSid, known once the REST call returned


@dataclass(frozen=True)
class ApprovalRecord:
    """The durable copy of one approval prompt (`policy.approvals.Approval` with wall times
    and the context flattened)."""

    id: str
    tool: str
    call_id: str
    arguments: dict[str, Any] = field(hash=False)
    risk: str
    session_id: str
    channel: str
    role: str
    caller_id: str
    caller_name: str
    state: ApprovalState
    created_at: float
    expires_at: float
    approver: str | None = None
    note: str | None = None
    answered_at: float | None = None

    def __post_init__(self) -> None:
        # A record read back from a text column arrives as a plain string.
        object.__setattr__(self, "state", ApprovalState(self.state))
        try:
            dumps(self.arguments)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"approval arguments must be JSON: {exc}") from None

    @property
    def pending(self) -> bool:
        return self.state is ApprovalState.PENDING

    @classmethod
    def from_approval(cls, approval: Approval, to_wall: Callable[[float], float]) -> ApprovalRecord:
        """Snapshot `approval`; `to_wall` maps its monotonic times to unix time (e.g.
        `ApprovalService.to_wall`)."""
        ctx = approval.ctx
        return cls(
            id=approval.id,
            tool=approval.call.name,
            call_id=approval.call.call_id,
            arguments=approval.call.arguments,
            risk=approval.call.risk,
            session_id=ctx.session_id,
            channel=ctx.channel.value,
            role=ctx.role.value,
            caller_id=ctx.caller_id,
            caller_name=ctx.caller_name,
            state=approval.state,
            created_at=to_wall(approval.created_at),
            expires_at=to_wall(approval.expires_at),
            approver=approval.approver,
            note=approval.note,
            answered_at=None if approval.answered_at is None else to_wall(approval.answered_at),
        )


@dataclass(frozen=True)
class SessionRecord:
    """One live session as the registry shows it. `status` is the session's own
    JSON-friendly summary; `ended_at` is set only on records `mark_interrupted` returns."""

    id: str
    kind: SessionKind
    channel: str
    caller: str
    started_at: float
    backend: str
    status: dict[str, Any] = field(default_factory=dict, hash=False)
    ended_at: float | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a session record needs an id")
        if self.kind not in SESSION_KINDS:
            raise ValueError(f"session kind must be one of {', '.join(SESSION_KINDS)}")
        try:
            dumps(self.status)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"session status must be JSON: {exc}") from None
