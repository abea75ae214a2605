"""The asyncio layer over the pure `ApprovalBook`: prompts on the bus, a timer that expires
overdue prompts, and a future per prompt that the dispatcher awaits.

Time comes from the injected clock. The timer task sleeps until the next deadline by the
clock's own reckoning; tests with a `ManualClock` advance it and call `expire_due()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from foreman.bus import EventBus
from foreman.clock import Clock
from foreman.events import ApprovalDecided, ApprovalPrompted
from foreman.policy.approvals import AlreadyAnswered, Approval, ApprovalBook, ApprovalState
from foreman.policy.context import CallContext
from foreman.policy.decision import ToolCall
from foreman.stores.interfaces import ApprovalStore
from foreman.stores.records import ApprovalRecord

log = logging.getLogger("foreman.approval")


class ApprovalService:
    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        *,
        timeout_s: float = 120.0,
        book: ApprovalBook | None = None,
        voice_confirmable: frozenset[str] = frozenset(),
        store: ApprovalStore | None = None,
    ) -> None:
        self.bus = bus
        self.store = store  # the durable record of every prompt (None: in memory only)
        self._writes: set[asyncio.Task[bool]] = set()
        self.clock = clock
        self.timeout_s = timeout_s
        self.book = book or ApprovalBook()
        self._futures: dict[str, asyncio.Future[Approval]] = {}
        self._voice: set[str] = set(voice_confirmable)
        self._timer: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._watchers: list[Callable[[Approval], None]] = []

    def watch(self, listener: Callable[[Approval], None]) -> None:
        """Call `listener` with every prompt when it opens and when it is settled, on the
        loop, before the bus hears of it (a history records approvals losslessly). It must
        not block; an exception it raises is logged and ignored."""
        self._watchers.append(listener)

    # --- asking ----------------------------------------------------------------------
    def open(
        self, call: ToolCall, ctx: CallContext, *, voice_confirmable: bool = False
    ) -> Approval:
        """Open a prompt and publish it; then `await wait(approval.id)` for the outcome."""
        approval = self.book.open(
            call=call, ctx=ctx, now=self.clock.monotonic(), timeout_s=self.timeout_s
        )
        self._futures[approval.id] = asyncio.get_running_loop().create_future()
        if voice_confirmable:
            self._voice.add(approval.id)
        self._persist(approval)
        log.info(
            "%s asked: %s for %s in %s, expires in %g s",
            approval.id,
            call.name,
            ctx.caller_name or ctx.caller_id or ctx.role.value,
            ctx.session_id,
            self.timeout_s,
        )
        self._tell_watchers(approval)
        self.bus.publish(ApprovalPrompted(self.describe(approval)))
        self._ensure_timer()
        return approval

    async def wait(self, approval_id: str) -> Approval:
        """The final approval (approved / denied / expired / cancelled)."""
        future = self._futures.get(approval_id)
        if future is None:  # settled before anyone waited (answered in the same tick)
            return self.book.get(approval_id)
        return await asyncio.shield(future)

    async def request(
        self, call: ToolCall, ctx: CallContext, *, voice_confirmable: bool = False
    ) -> Approval:
        approval = self.open(call, ctx, voice_confirmable=voice_confirmable)
        return await self.wait(approval.id)

    # --- answering (sync: HTTP handlers and transcripts call these on the loop) --------
    def answer(
        self, approval_id: str, approve: bool, approver: str = "api", note: str | None = None
    ) -> Approval:
        """Raises UnknownApproval (404) or AlreadyAnswered (409), after settling an expiry."""
        try:
            done = self.book.answer(
                approval_id, approve, approver=approver, note=note, now=self.clock.monotonic()
            )
        except Exception:
            current = self._maybe_get(approval_id)
            if current is not None and not current.pending:
                self._settle(current)  # it expired just now: wake its waiter too
            raise
        self._settle(done)
        return done

    def expire_due(self) -> list[Approval]:
        expired = self.book.expire_due(self.clock.monotonic())
        for approval in expired:
            self._settle(approval)
        return expired

    def cancel_session(self, session_id: str) -> list[Approval]:
        cancelled = self.book.cancel_session(session_id, self.clock.monotonic())
        for approval in cancelled:
            self._settle(approval)
        return cancelled

    def cancel(self, approval_id: str, note: str = "cancelled") -> Approval | None:
        """Cancel one pending prompt (its waiter went away); None if it was not pending."""
        try:
            done = self.book.cancel(approval_id, self.clock.monotonic(), note=note)
        except (AlreadyAnswered, KeyError):
            return None
        self._settle(done)
        return done

    def pending(self) -> list[Approval]:
        return self.book.pending()

    def get(self, approval_id: str) -> Approval:
        return self.book.get(approval_id)

    def is_voice_confirmable(self, approval_id: str) -> bool:
        return approval_id in self._voice

    # --- presentation ----------------------------------------------------------------
    def to_wall(self, monotonic: float) -> float:
        return self.clock.wall() - self.clock.monotonic() + monotonic

    def describe(self, approval: Approval) -> dict[str, Any]:
        """The prompt as the API and the bus show it (times are unix seconds)."""
        ctx = approval.ctx
        return {
            "id": approval.id,
            "tool": approval.call.name,
            "arguments": approval.call.arguments,
            "risk": approval.call.risk,
            "caller": ctx.caller_name or ctx.caller_id or ctx.role.value,
            "caller_id": ctx.caller_id,
            "role": ctx.role.value,
            "channel": ctx.channel.value,
            "session_id": ctx.session_id,
            "state": approval.state.value,
            "created_at": self.to_wall(approval.created_at),
            "expires_at": self.to_wall(approval.expires_at),
            "expires_in_s": max(0.0, approval.expires_at - self.clock.monotonic()),
            "voice_confirmable": approval.id in self._voice,
            "approver": approval.approver,
            "note": approval.note,
        }

    # --- internals -------------------------------------------------------------------
    def _maybe_get(self, approval_id: str) -> Approval | None:
        try:
            return self.book.get(approval_id)
        except KeyError:
            return None

    def _settle(self, approval: Approval) -> None:
        future = self._futures.pop(approval.id, None)
        self._voice.discard(approval.id)
        if future is None:
            return  # already settled
        if not future.done():
            future.set_result(approval)
        self._persist(approval)
        log.info("%s %s", approval.id, _outcome(approval))
        self._tell_watchers(approval)
        self.bus.publish(ApprovalDecided(self.describe(approval)))
        self._changed.set()

    def _tell_watchers(self, approval: Approval) -> None:
        for listener in self._watchers:
            try:
                listener(approval)
            except Exception:
                log.exception("approval watcher failed")

    def _persist(self, approval: Approval) -> None:
        """Write the prompt's state when it opens and when it is decided, off the loop. The
        store never lets an earlier state overwrite a final one, so writes may land in any
        order; a failed write is logged (the decision itself is not lost: it is in memory,
        on the bus and in the audit log)."""
        if self.store is None:
            return
        task = asyncio.get_running_loop().create_task(
            self.store.save(ApprovalRecord.from_approval(approval, self.to_wall))
        )
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[bool]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("approval record not stored: %s", task.exception())

    def _ensure_timer(self) -> None:
        self._changed.set()
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(
                self._run_timer(), name="approval-timer"
            )

    async def _run_timer(self) -> None:
        while self._futures:
            self._changed.clear()
            deadline = self.book.next_deadline()
            if deadline is None:
                break
            delay = deadline - self.clock.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=delay)
                continue
            self.expire_due()

    async def flush(self) -> None:
        """Wait until every approval record handed over so far is stored."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def aclose(self) -> None:
        await self.flush()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None


def _outcome(approval: Approval) -> str:
    """How a prompt ended, for the log: who answered, or why nobody did."""
    state = approval.state.value
    if approval.state in (ApprovalState.APPROVED, ApprovalState.DENIED):
        return f"{state} by {approval.approver or 'unknown'}"
    if approval.state is ApprovalState.EXPIRED:
        return f"{state} after {approval.expires_at - approval.created_at:g} s (nobody answered)"
    return f"{state}: {approval.note or 'the session ended'}"
