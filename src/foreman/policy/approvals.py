"""Approvals as a small state machine, pure: time is passed in, nothing sleeps.

    pending ──approve──> approved
       │ ───deny─────> denied
       │ ───expire───> expired     (now >= expires_at, found by `expire_due` or `answer`)
       └────cancel───> cancelled   (the call or session ended)

Every state but pending is final; a second answer raises `AlreadyAnswered` (HTTP 409), an
unknown id raises `UnknownApproval` (HTTP 404). Finished approvals are kept (up to
`keep_finished`) so a late second answer still gets 409 rather than 404.
"""

from __future__ import annotations

import enum
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from foreman.exceptions import ForemanError, InvalidState
from foreman.policy.context import CallContext
from foreman.policy.decision import ToolCall


class ApprovalState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class ApprovalEvent(enum.StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    EXPIRE = "expire"
    CANCEL = "cancel"


_TRANSITIONS: dict[tuple[ApprovalState, ApprovalEvent], ApprovalState] = {
    (ApprovalState.PENDING, ApprovalEvent.APPROVE): ApprovalState.APPROVED,
    (ApprovalState.PENDING, ApprovalEvent.DENY): ApprovalState.DENIED,
    (ApprovalState.PENDING, ApprovalEvent.EXPIRE): ApprovalState.EXPIRED,
    (ApprovalState.PENDING, ApprovalEvent.CANCEL): ApprovalState.CANCELLED,
}


class UnknownApproval(ForemanError, KeyError):
    """No approval has this id (HTTP 404)."""

    def __str__(self) -> str:
        return f"no approval with id {self.args[0]!r}"


class AlreadyAnswered(ForemanError):
    """The approval is no longer pending (HTTP 409); `.approval` is its final record."""

    def __init__(self, approval: Approval) -> None:
        super().__init__(f"approval {approval.id} is already {approval.state.value}")
        self.approval = approval


@dataclass(frozen=True)
class Approval:
    id: str
    call: ToolCall
    ctx: CallContext
    state: ApprovalState
    created_at: float
    expires_at: float
    approver: str | None = None
    note: str | None = None
    answered_at: float | None = None

    @property
    def pending(self) -> bool:
        return self.state is ApprovalState.PENDING

    @property
    def approved(self) -> bool:
        return self.state is ApprovalState.APPROVED


def _new_id() -> str:
    return "apr_" + secrets.token_hex(8)


class ApprovalBook:
    """All approvals of one process. Not thread-safe: drive it from one event loop."""

    def __init__(
        self, *, id_factory: Callable[[], str] = _new_id, keep_finished: int = 1000
    ) -> None:
        self._pending: dict[str, Approval] = {}
        self._finished: OrderedDict[str, Approval] = OrderedDict()
        self._new_id = id_factory
        self._keep = keep_finished

    def open(self, *, call: ToolCall, ctx: CallContext, now: float, timeout_s: float) -> Approval:
        """Start a pending approval; the caller then shows the prompt and waits for an answer."""
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        approval_id = self._new_id()
        while approval_id in self._pending or approval_id in self._finished:
            approval_id = self._new_id()
        approval = Approval(
            id=approval_id,
            call=call,
            ctx=ctx,
            state=ApprovalState.PENDING,
            created_at=now,
            expires_at=now + timeout_s,
        )
        self._pending[approval_id] = approval
        return approval

    def get(self, approval_id: str) -> Approval:
        found = self._pending.get(approval_id) or self._finished.get(approval_id)
        if found is None:
            raise UnknownApproval(approval_id)
        return found

    def pending(self) -> list[Approval]:
        """Pending approvals, oldest first."""
        return sorted(self._pending.values(), key=lambda a: a.created_at)

    def answer(
        self, approval_id: str, approve: bool, *, approver: str, note: str | None, now: float
    ) -> Approval:
        """Approve or deny. Raises UnknownApproval, or AlreadyAnswered when it is final
        (including when it has just expired: `now >= expires_at`)."""
        current = self.get(approval_id)
        if current.pending and now >= current.expires_at:
            self._finish(current, ApprovalEvent.EXPIRE, now=now)
            current = self.get(approval_id)
        if not current.pending:
            raise AlreadyAnswered(current)
        event = ApprovalEvent.APPROVE if approve else ApprovalEvent.DENY
        return self._finish(current, event, now=now, approver=approver, note=note)

    def expire_due(self, now: float) -> list[Approval]:
        """Expire every pending approval whose deadline has passed; returns them."""
        due = [a for a in self.pending() if now >= a.expires_at]
        return [self._finish(a, ApprovalEvent.EXPIRE, now=now) for a in due]

    def cancel(self, approval_id: str, now: float, note: str | None = None) -> Approval:
        current = self.get(approval_id)
        if not current.pending:
            raise AlreadyAnswered(current)
        return self._finish(current, ApprovalEvent.CANCEL, now=now, note=note)

    def cancel_session(self, session_id: str, now: float) -> list[Approval]:
        """Cancel the pending approvals of a session that ended; returns them."""
        mine = [a for a in self.pending() if a.ctx.session_id == session_id]
        return [self._finish(a, ApprovalEvent.CANCEL, now=now, note="session ended") for a in mine]

    def next_deadline(self) -> float | None:
        return min((a.expires_at for a in self._pending.values()), default=None)

    def _finish(
        self,
        approval: Approval,
        event: ApprovalEvent,
        *,
        now: float,
        approver: str | None = None,
        note: str | None = None,
    ) -> Approval:
        new_state = _TRANSITIONS.get((approval.state, event))
        if new_state is None:  # pragma: no cover - callers check `pending` first
            raise InvalidState(f"approval {approval.id}: {event.value} in state {approval.state}")
        done = replace(approval, state=new_state, approver=approver, note=note, answered_at=now)
        del self._pending[approval.id]
        self._finished[approval.id] = done
        while len(self._finished) > self._keep:
            self._finished.popitem(last=False)
        return done
