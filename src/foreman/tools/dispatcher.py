"""The tool dispatcher: runs one tool call from the model to its one output.

    ToolRequest ─> ToolCallFlow.prepare ─ rejected ─> error output the model can correct
                ─> ToolCallFlow.decide
        Deny ──────────> {"ok": false, "error": "denied: …"}
        Allow ─────────> run (per-tool timeout; "still running" note) ─> output
        NeedsApproval ─> open prompt, tell the model it is NOT done, hold the output
                         ─ approved ─> run ─> output
                         ─ denied / expired ─> output saying so ("the action was NOT done")
                         ─ cancelled (session ended) ─> nothing to send

While an approval is pending the `function_call_output` is *withheld*: the model only gets
a status note saying the action waits for approval and has NOT been done, so the one output
it ever sees for that call is the real result, and nothing in the conversation can read as
"done" before the tool ran. The session lets the model speak meanwhile (no dead air).

`handle` runs the whole flow; the session runs it as a task of its own task group, with
`deadline_s` as the bound, and answers the model itself if `handle` fails or overruns.
Decisions are `ToolCallFlow`'s (pure), words of the owner are `SpokenConfirmation`'s, and
every call leaves one audit row (`AuditWriter`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from foreman.bus import EventBus
from foreman.clock import Clock
from foreman.events import ToolDecided, ToolResultSent
from foreman.policy.approvals import Approval
from foreman.policy.context import CallContext
from foreman.policy.decision import Allow, Deny, NeedsApproval
from foreman.policy.gatekeeper import Gatekeeper
from foreman.tools.approval_service import ApprovalService
from foreman.tools.audit import AuditWriter
from foreman.tools.confirm import SpokenConfirmation
from foreman.tools.executors.base import BoundExecutor, ExecutorRegistry, Invocation
from foreman.tools.flow import Prepared, Rejected, Run, ToolCallFlow
from foreman.tools.outputs import Outcome, error_output, output_ok
from foreman.tools.request import ToolRequest
from foreman.tools.runner import run_tool
from foreman.tools.session import ToolSession
from foreman.tools.spec import ToolSpec

log = logging.getLogger("foreman.tool")
_DECISIONS: Final = {Allow: "allow", Deny: "deny", NeedsApproval: "needs approval"}

DEADLINE_MARGIN_S: Final = 10.0  # beyond timeout + approval: only a bug gets this far


class ToolDispatcher:
    def __init__(
        self,
        *,
        specs: Mapping[str, ToolSpec],
        gatekeeper: Gatekeeper,
        approvals: ApprovalService,
        executors: ExecutorRegistry,
        audit: AuditWriter,
        bus: EventBus,
        clock: Clock,
        still_running_after_s: float = 3.0,
    ) -> None:
        self.gatekeeper = gatekeeper
        self.approvals = approvals
        self.audit = audit
        self.bus = bus
        self.clock = clock
        self.still_running_after_s = still_running_after_s
        self.confirmation = SpokenConfirmation(approvals, clock)
        # Resolve every executor now: a spec bound to nothing stops start-up (ConfigError).
        self._executors: dict[str, BoundExecutor] = {
            name: executors.resolve(spec) for name, spec in specs.items()
        }
        # Checked once: a tool whose service is not set up is never offered, and a call to it
        # anyway is answered with the fix.
        self.unavailable: dict[str, str] = {
            name: why
            for name, bound in self._executors.items()
            if (why := bound.unavailable()) is not None
        }
        self.flow = ToolCallFlow(specs, gatekeeper, self.unavailable)
        self.specs = self.flow.specs

    # --- what the model is offered ---------------------------------------------------
    def tool_definitions(self, ctx: CallContext) -> list[dict[str, Any]]:
        """The tool schemas to offer this caller (the backend puts them on its wire): the
        available tools this caller may use."""
        return [spec.to_realtime() for spec in self.flow.offered(ctx)]

    def deadline_s(self, request: ToolRequest) -> float:
        spec = self.specs.get(request.name)
        timeout = spec.timeout_s if spec is not None else 0.0
        return timeout + self.approvals.timeout_s + DEADLINE_MARGIN_S

    # --- one call --------------------------------------------------------------------
    async def handle(self, request: ToolRequest, session: ToolSession) -> None:
        """Decide, wait for an approval if needed, run, and send the one output."""
        ctx = session.ctx
        prepared = self.flow.prepare(request)
        if isinstance(prepared, Rejected):
            log.info(
                "%s (%s) in %s: rejected: %s",
                request.name,
                request.call_id,
                ctx.session_id,
                prepared.message,
            )
            await self._reply(session, request.call_id, error_output(prepared.message))
            await self.audit.write(
                ctx,
                tool=request.name,
                call_id=request.call_id,
                arguments=prepared.arguments,
                decision=prepared.decision,
                reason=prepared.message,
                outcome="rejected",
            )
            return
        decision = self.flow.decide(prepared, ctx)
        log.info(
            "%s (%s) in %s: %s: %s",
            request.name,
            request.call_id,
            ctx.session_id,
            _DECISIONS[type(decision)],
            decision.reason,
        )
        self.bus.publish(
            ToolDecided(
                ctx.session_id,
                request.call_id,
                request.name,
                type(decision).__name__.lower(),
                decision.reason,
            )
        )
        if isinstance(decision, Deny):
            await self._reply(session, request.call_id, error_output(f"denied: {decision.reason}"))
            await self._audit(ctx, prepared, "deny", decision.reason, outcome="not run")
        elif isinstance(decision, Allow):
            await self._run_allowed(prepared, session, decision)
        elif isinstance(decision, NeedsApproval):
            await self._run_after_approval(prepared, session, decision)

    async def _run_allowed(self, prepared: Prepared, session: ToolSession, decision: Allow) -> None:
        result = Outcome(False, "", "cancelled")
        try:
            result = await self._execute(prepared, session)
            await self._reply(session, prepared.call.call_id, result.output, respond=result.respond)
        finally:
            await self._audit(
                session.ctx, prepared, "allow", decision.reason, outcome=result.outcome
            )

    async def _run_after_approval(
        self, prepared: Prepared, session: ToolSession, decision: NeedsApproval
    ) -> None:
        approval = self.approvals.open(
            prepared.call, session.ctx, voice_confirmable=decision.voice_confirmable
        )
        final: Approval = approval
        result = Outcome(False, "", "cancelled")
        try:
            try:  # the model learns "pending, NOT done" before anything else happens
                await session.notify_model(self.flow.pending_note(prepared, decision))
            except Exception:  # the prompt stands; its outcome is still sent later
                log.warning("could not tell the model %s is pending", prepared.call.call_id)
            final = await self.approvals.wait(approval.id)
            verdict = self.flow.settle(final, self.approvals.timeout_s)
            if verdict is None:
                return  # cancelled: the session ended, there is nobody to tell
            result = await self._execute(prepared, session) if isinstance(verdict, Run) else verdict
            await self._reply(session, prepared.call.call_id, result.output, respond=result.respond)
        finally:
            if final.pending:  # the session ended while waiting
                final = self.approvals.cancel(approval.id) or self.approvals.get(approval.id)
            wait_s = (final.answered_at or self.clock.monotonic()) - approval.created_at
            await self._audit(
                session.ctx,
                prepared,
                final.state.value,
                decision.reason,
                outcome=result.outcome,
                approver=final.approver,
                approval_id=approval.id,
                wait_s=wait_s,
            )

    async def _execute(self, prepared: Prepared, session: ToolSession) -> Outcome:
        spec, call = prepared.spec, prepared.call
        bound = self._executors[spec.name]
        inv = Invocation(call.call_id, spec, session.ctx, session, self.clock, bound.config)
        return await run_tool(
            bound.run,
            dict(call.arguments),
            inv,
            still_running_after_s=self.still_running_after_s,
        )

    # --- spoken confirmation and session end -----------------------------------------
    def on_user_utterance(self, session: ToolSession, text: str) -> None:
        """A whole user utterance: the verified owner's yes / no may answer a prompt."""
        self.confirmation.heard(session.ctx, text)

    def cancel_session(self, session_id: str) -> None:
        """The session ended: its pending prompts are cancelled (its tool tasks end with
        the session's task group)."""
        self.approvals.cancel_session(session_id)

    def cancel_all(self) -> None:
        """Shutdown: cancel every pending prompt."""
        for approval in self.approvals.pending():
            self.approvals.cancel_session(approval.ctx.session_id)

    # --- helpers ---------------------------------------------------------------------
    async def _reply(
        self, session: ToolSession, call_id: str, output: str, *, respond: bool = True
    ) -> None:
        await session.send_tool_result(call_id, output, respond=respond)
        self.bus.publish(ToolResultSent(session.ctx.session_id, call_id, output_ok(output)))

    async def _audit(
        self, ctx: CallContext, prepared: Prepared, decision: str, reason: str, **kw: Any
    ) -> None:
        call = prepared.call
        await self.audit.write(
            ctx,
            tool=call.name,
            call_id=call.call_id,
            arguments=call.arguments,
            decision=decision,
            reason=reason,
            **kw,
        )
