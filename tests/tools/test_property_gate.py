"""Property: over random rule sets, callers, channels, tool calls and approver behaviour,
no executor runs unless `decide` allowed the call or its approval said yes, and the model
never gets an "ok" result before the tool ran."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foreman.bus import EventBus
from foreman.clock import ManualClock
from foreman.config import StorageConfig
from foreman.policy import (
    Allow,
    ApprovalState,
    CallContext,
    Channel,
    Deny,
    NeedsApproval,
    Role,
    ToolCall,
)
from foreman.tools.request import ToolRequest
from foreman.tools.services import build_tool_services

from .conftest import OWNER, FakeSession, Jobs, Recorder, make_settings

TOOLS = ["send_sms", "get_time", "calendar_create", "send_email"]
ARGS = {
    "send_sms": [{"to": OWNER, "body": "hi"}, {"to": "+15550109999", "body": "hi"}],
    "get_time": [{}, {"timezone": "Europe/Paris"}],
    "calendar_create": [{"title": "x", "start": "2026-11-24T10:00:00"}],
    "send_email": [{"to": ["a@example.com"], "subject": "s", "body": "b"}],
}
ANSWERS = ["approve", "deny", "expire", "hangup", "voice_yes", "voice_no", "answer_then_hangup"]

rule_st = st.fixed_dictionaries(
    {"action": st.sampled_from(["allow", "ask", "deny"])},
    optional={
        "tool": st.sampled_from(["*", *TOOLS]),
        "role": st.lists(st.sampled_from(["owner", "contact", "unknown"]), min_size=1, unique=True),
        "channel": st.sampled_from(["phone", "local_voice", "chat"]),
        "risk": st.sampled_from(["low", "high"]),
        "when": st.just([{"arg": "to", "equals_owner": True}]),
    },
)
call_st = st.tuples(
    st.sampled_from(TOOLS),
    st.integers(0, 1),
    st.sampled_from(list(Role)),
    st.sampled_from(list(Channel)),
    st.booleans(),
    st.sampled_from(ANSWERS),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(rule_st, max_size=4), calls=st.lists(call_st, min_size=1, max_size=5))
def test_nothing_runs_without_allow_or_yes(
    rules: list[dict[str, Any]], calls: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_scenario(rules, calls))


async def _scenario(rules: list[dict[str, Any]], calls: list[tuple[Any, ...]]) -> None:
    clock = ManualClock()
    rec = Recorder()
    s = make_settings(Path(tempfile.gettempdir()), rules=rules)
    s = s.replace(storage=StorageConfig(db_path=":memory:"))
    svc = build_tool_services(s, EventBus(), clock=clock, executors=rec.registry(s))
    jobs = Jobs(svc)
    expected: dict[str, Any] = {}
    sessions: dict[str, FakeSession] = {}
    try:
        for i, (tool, variant, role, channel, verified, answer) in enumerate(calls):
            args = ARGS[tool][variant % len(ARGS[tool])]
            ctx = CallContext(f"s{i}", channel, role, caller_id="+15550100002", verified=verified)
            session = sessions[ctx.session_id] = FakeSession(ctx)
            call_id = f"call_{i}"
            spec = svc.specs[tool]
            decision = svc.gatekeeper.decide(ToolCall(call_id, tool, args, spec.risk), ctx)
            expected[call_id] = decision
            if role is Role.UNKNOWN and spec.risk == "high":
                assert isinstance(decision, Deny)
            await jobs.handle(ToolRequest(call_id, tool, json.dumps(args)), session)
            if not isinstance(decision, NeedsApproval):
                continue
            (pending,) = [a for a in svc.approvals.pending() if a.call.call_id == call_id]
            clock.advance(2)
            if answer == "approve":
                svc.approvals.answer(pending.id, True, approver="api")
            elif answer == "deny":
                svc.approvals.answer(pending.id, False, approver="api")
            elif answer == "expire":
                clock.advance(200)
                svc.approvals.expire_due()
            elif answer == "hangup":
                jobs.hang_up(ctx.session_id)
            elif answer == "answer_then_hangup":
                svc.approvals.answer(pending.id, True, approver="api")
                jobs.hang_up(ctx.session_id)
            else:
                svc.dispatcher.on_user_utterance(session, "yes" if answer == "voice_yes" else "no")
                if svc.approvals.pending():  # not the verified owner: nobody answered
                    jobs.hang_up(ctx.session_id)
            await jobs.drain(ctx.session_id, wait_s=5)
        await jobs.drain(wait_s=5)
        rows = {r["call_id"]: r for r in await svc.audit.query(1000)}
        assert set(rows) == set(expected)  # every decision is in the audit log
        ran = set(rec.call_ids)
        for call_id, decision in expected.items():
            row = rows[call_id]
            if call_id in ran:
                approved = row["decision"] == ApprovalState.APPROVED.value
                assert isinstance(decision, Allow) or (
                    isinstance(decision, NeedsApproval) and approved
                ), (call_id, decision, row)
            if isinstance(decision, Deny):
                assert call_id not in ran
        for session in sessions.values():
            for call_id, out in session.results.items():
                if out.get("ok"):
                    assert call_id in ran
                    assert session.log.index(("run", call_id)) < session.log.index(
                        ("result", call_id)
                    )
    finally:
        await svc.aclose()
