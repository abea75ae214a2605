"""The tool dispatcher: every tool call from the model goes through here.

    ToolRequest ─> parse JSON ─> known tool? ─> schema check ─> Gatekeeper.decide
        Deny ──────────> function_call_output {"ok": false, "error": "denied: …"}
        Allow ─────────> run (per-tool timeout; "still running" note) ─> output
        NeedsApproval ─> open prompt, tell the model it is NOT done, hold the output
                         ─ approved ─> run ─> output
                         ─ denied / expired ─> output error ("denied by owner",
                                               "approval timed out after 120 s")
                         ─ cancelled (session ended) ─> nothing to send

Design: while an approval is pending the `function_call_output` is *withheld*; the model
only gets a system note (`notify_model`) saying the action is waiting for approval and has
NOT been done. So the one output the model ever sees for that `call_id` is the real result,
and nothing in the conversation can read as "done" before the tool has run (the same hold
the GPT-Live reference recommends, §5.3). The session lets the model speak meanwhile.

`handle` returns as soon as the decision is made (the prompt, if any, already exists);
running and waiting happen in tasks owned here, per session, so a long approval never
blocks the session's event loop. `cancel_session` cancels both prompts and tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from foreman.backends.base import ToolRequest
from foreman.clock import Clock
from foreman.config import Settings
from foreman.exceptions import ToolArgumentsInvalid
from foreman.history.audit import AuditLog, AuditRecord
from foreman.policy.approvals import AlreadyAnswered, Approval, ApprovalState
from foreman.policy.confirm import Confirmation, VoiceConfirmation
from foreman.policy.context import CallContext
from foreman.policy.decision import Allow, Deny, NeedsApproval, ToolCall
from foreman.policy.gatekeeper import Gatekeeper
from foreman.session.bus import EventBus
from foreman.tools.approvals import ApprovalService
from foreman.tools.executors.base import Executor, ExecutorRegistry, Invocation
from foreman.tools.runner import Outcome, error_output, run_tool
from foreman.tools.session import ToolSession
from foreman.tools.spec import ToolSpec

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Job:
    """One tool call's task; `cancelled` is set when its session ends."""

    cancelled: bool = False
    started: bool = False
    task: asyncio.Task[None] | None = None


class ToolDispatcher:
    # A final transcript this soon after the prompt opened is most likely the request
    # itself (transcription lags the function call), not an answer to the read-back.
    CONFIRM_GRACE_S = 1.0

    def __init__(
        self,
        *,
        specs: Mapping[str, ToolSpec],
        gatekeeper: Gatekeeper,
        approvals: ApprovalService,
        executors: ExecutorRegistry,
        audit: AuditLog,
        bus: EventBus,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.specs = dict(specs)
        self.gatekeeper = gatekeeper
        self.approvals = approvals
        self.audit = audit
        self.bus = bus
        self.clock = clock
        self.settings = settings
        # Resolve every executor now: a spec bound to nothing stops start-up (ConfigError).
        self._executors: dict[str, Executor] = {
            name: executors.resolve(spec) for name, spec in self.specs.items()
        }
        self._confirm = VoiceConfirmation()
        self._tasks: dict[str, set[_Job]] = {}

    # --- what the model is offered ---------------------------------------------------
    def tool_definitions(self, ctx: CallContext) -> list[dict[str, Any]]:
        """The `tools` for `session.update`, filtered by what this caller may be offered."""
        return [
            spec.to_realtime()
            for spec in self.specs.values()
            if self.gatekeeper.offered(spec.name, spec.risk, ctx)
        ]

    # --- one call --------------------------------------------------------------------
    async def handle(self, request: ToolRequest, session: ToolSession) -> None:
        """Decide at once; run or wait in a task. Never raises (errors go to the model)."""
        ctx = session.ctx
        try:
            prepared = self._prepare(request)
            if isinstance(prepared, str):
                await self._reply(session, request.call_id, error_output(prepared))
                await self._audit(
                    ctx, request, _raw_args(request), "invalid", prepared, outcome="rejected"
                )
                return
            spec, call = prepared
            decision = self.gatekeeper.decide(call, ctx)
            self.bus.publish(
                "tool.call",
                session_id=ctx.session_id,
                call_id=call.call_id,
                tool=call.name,
                decision=type(decision).__name__.lower(),
                reason=decision.reason,
            )
            if isinstance(decision, Deny):
                await self._reply(session, call.call_id, error_output(f"denied: {decision.reason}"))
                await self._audit(
                    ctx, request, call.arguments, "deny", decision.reason, outcome="not run"
                )
            elif isinstance(decision, Allow):
                self._spawn(
                    ctx.session_id,
                    lambda job: self._run_allowed(job, spec, call, session, decision),
                )
            elif isinstance(decision, NeedsApproval):
                approval = self.approvals.open(
                    call, ctx, voice_confirmable=decision.voice_confirmable
                )
                self._spawn(
                    ctx.session_id,
                    lambda job: self._run_after_approval(job, spec, approval, session, decision),
                )
                # Told before `handle` returns: the model learns "pending, NOT done" at once.
                try:
                    await session.notify_model(self._pending_note(spec, call, decision))
                except Exception:  # the prompt stands; its outcome is still sent later
                    log.warning("could not tell the model %s is pending", call.call_id)
        except Exception as exc:  # a bug here must not kill the call: tell the model
            log.exception("tool dispatch failed for %s", request.name)
            with contextlib.suppress(Exception):
                await self._reply(
                    session, request.call_id, error_output(f"internal error: {type(exc).__name__}")
                )

    def _prepare(self, request: ToolRequest) -> tuple[ToolSpec, ToolCall] | str:
        spec = self.specs.get(request.name)
        if spec is None:
            return f"unknown tool {request.name!r}; available: {', '.join(sorted(self.specs))}"
        try:
            arguments = json.loads(request.arguments or "{}")
        except json.JSONDecodeError as exc:
            return f"arguments are not valid JSON ({exc.msg} at position {exc.pos}); call again"
        if not isinstance(arguments, dict):
            return "arguments must be a JSON object; call again"
        try:
            spec.validate(arguments)
        except ToolArgumentsInvalid as exc:
            return f"invalid arguments: {exc}; correct them and call again"
        return spec, ToolCall(request.call_id, spec.name, arguments, spec.risk)

    async def _run_allowed(
        self, job: _Job, spec: ToolSpec, call: ToolCall, session: ToolSession, decision: Allow
    ) -> None:
        ctx = session.ctx
        result = Outcome(False, "", "cancelled")
        try:
            if job.cancelled:
                return
            result = await self._execute(spec, call, session)
            await self._reply(session, call.call_id, result.output, respond=result.respond)
        finally:
            await self._audit(
                ctx, call, call.arguments, "allow", decision.reason, outcome=result.outcome
            )

    async def _run_after_approval(
        self,
        job: _Job,
        spec: ToolSpec,
        approval: Approval,
        session: ToolSession,
        decision: NeedsApproval,
    ) -> None:
        call, ctx = approval.call, session.ctx
        final: Approval = approval
        result = Outcome(False, "", "cancelled")
        try:
            final = await self.approvals.wait(approval.id)
            if job.cancelled:  # the call ended: even an approval that won the race is moot
                return
            if final.state is ApprovalState.APPROVED:
                result = await self._execute(spec, call, session)
            elif final.state is ApprovalState.DENIED:
                reason = "denied by owner" + (f": {final.note}" if final.note else "")
                result = Outcome(
                    False, error_output(reason + "; the action was NOT done"), "not run"
                )
            elif final.state is ApprovalState.EXPIRED:
                msg = (
                    f"approval timed out after {self.approvals.timeout_s:g} s; "
                    "the action was NOT done"
                )
                result = Outcome(False, error_output(msg), "not run")
            else:  # cancelled: the session ended, there is nobody to tell
                return
            await self._reply(session, call.call_id, result.output, respond=result.respond)
        finally:
            if final.pending:  # cancelled while waiting (call ended), or answered meanwhile
                final = self.approvals.cancel(approval.id) or self.approvals.get(approval.id)
            wait_s = (final.answered_at or self.clock.monotonic()) - approval.created_at
            await self._audit(
                ctx,
                call,
                call.arguments,
                final.state.value,
                decision.reason,
                outcome=result.outcome,
                approver=final.approver,
                approval_id=approval.id,
                wait_s=wait_s,
            )

    async def _execute(self, spec: ToolSpec, call: ToolCall, session: ToolSession) -> Outcome:
        inv = Invocation(call.call_id, spec, session.ctx, session, self.settings, self.clock)
        return await run_tool(
            self._executors[spec.name],
            dict(call.arguments),
            inv,
            still_running_after_s=self.settings.tools.still_running_after_s,
        )

    def _pending_note(self, spec: ToolSpec, call: ToolCall, decision: NeedsApproval) -> str:
        args = json.dumps(call.arguments, ensure_ascii=False)
        note = (
            f"The {spec.name} action {args} is waiting for the owner's approval. "
            "It has NOT been done yet: do not say it is done. Tell the caller it needs approval; "
            "its result will arrive as the tool output."
        )
        if decision.voice_confirmable:
            note += (
                " You are speaking with the owner: read the action back in one sentence and ask "
                "for a clear yes or no. Their spoken answer decides."
            )
        return note

    # --- spoken confirmation ---------------------------------------------------------
    def on_user_transcript(self, session: ToolSession, text: str) -> None:
        """A final user transcript: the verified owner's yes / no answers the one pending
        voice-confirmable approval of this session. Anyone else's words change nothing."""
        ctx = session.ctx
        if not Gatekeeper.voice_confirmable(ctx):
            return
        mine = [
            a
            for a in self.approvals.pending()
            if a.ctx.session_id == ctx.session_id and self.approvals.is_voice_confirmable(a.id)
        ]
        if len(mine) != 1:  # none, or ambiguous: the API prompt still works
            return
        approval = mine[0]
        if self.clock.monotonic() - approval.created_at < self.CONFIRM_GRACE_S:
            return
        verdict = self._confirm.classify(text)
        if verdict is Confirmation.UNRELATED:
            return
        with contextlib.suppress(AlreadyAnswered, KeyError):
            self.approvals.answer(
                approval.id, verdict is Confirmation.YES, approver="owner (voice)", note=text[:200]
            )

    # --- session end -----------------------------------------------------------------
    def cancel_session(self, session_id: str) -> None:
        """The call ended: cancel its pending prompts and its running tools."""
        self.approvals.cancel_session(session_id)
        for job in list(self._tasks.get(session_id, ())):
            job.cancelled = True
            # A job that has not started yet sees the flag at its first step; cancelling it
            # now would skip its body, and with it the audit row.
            if job.started and job.task is not None:
                job.task.cancel()

    def cancel_all(self) -> None:
        """Shutdown: cancel every session's prompts and tools."""
        for session_id in list(self._tasks):
            self.cancel_session(session_id)
        for approval in self.approvals.pending():
            self.approvals.cancel_session(approval.ctx.session_id)

    async def drain(self, session_id: str | None = None, wait_s: float | None = None) -> None:
        """Wait until the session's (or every) tool task has finished."""
        tasks = [
            j.task
            for sid, jobs in self._tasks.items()
            if session_id in (None, sid)
            for j in jobs
            if j.task is not None
        ]
        if tasks:
            await asyncio.wait(tasks, timeout=wait_s)

    def running(self, session_id: str) -> int:
        return len(self._tasks.get(session_id, ()))

    # --- helpers ---------------------------------------------------------------------
    def _spawn(self, session_id: str, body: Callable[[_Job], Awaitable[None]]) -> None:
        job = _Job()
        jobs = self._tasks.setdefault(session_id, set())
        jobs.add(job)
        job.task = asyncio.get_running_loop().create_task(self._guard(job, body))

        def _done(_: asyncio.Task[None]) -> None:
            jobs.discard(job)
            if not jobs and self._tasks.get(session_id) is jobs:
                del self._tasks[session_id]

        job.task.add_done_callback(_done)

    @staticmethod
    async def _guard(job: _Job, body: Callable[[_Job], Awaitable[None]]) -> None:
        job.started = True
        try:
            await body(job)
        except asyncio.CancelledError:
            pass  # the session ended; the audit row was written in `finally`
        except Exception:
            log.exception("tool task failed")

    async def _reply(
        self, session: ToolSession, call_id: str, output: str, *, respond: bool = True
    ) -> None:
        await session.send_tool_result(call_id, output, respond=respond)
        ok = bool(json.loads(output).get("ok"))
        self.bus.publish("tool.result", session_id=session.ctx.session_id, call_id=call_id, ok=ok)

    async def _audit(
        self,
        ctx: CallContext,
        call: ToolRequest | ToolCall,
        arguments: Any,
        decision: str,
        reason: str,
        *,
        outcome: str,
        approver: str | None = None,
        approval_id: str | None = None,
        wait_s: float | None = None,
    ) -> None:
        record = AuditRecord(
            at=self.clock.wall(),
            session_id=ctx.session_id,
            caller=ctx.caller_name or ctx.caller_id,
            role=ctx.role.value,
            channel=ctx.channel.value,
            tool=call.name,
            call_id=call.call_id,
            arguments=arguments,
            decision=decision,
            reason=reason,
            outcome=outcome,
            approver=approver,
            approval_id=approval_id,
            wait_s=wait_s,
        )
        try:
            # shielded: a cancelled task (call ended) still gets its row written
            await asyncio.shield(self.audit.record(record))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("audit write failed")
        self.bus.publish("tool.audit", **asdict(record))


def _raw_args(request: ToolRequest) -> Any:
    try:
        return json.loads(request.arguments)
    except (json.JSONDecodeError, TypeError):
        return request.arguments
