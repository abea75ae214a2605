"""ToolDispatcher with a fake session: every path the model can take through a tool call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from foreman.bus import EventBus
from foreman.clock import ManualClock
from foreman.exceptions import ToolError
from foreman.policy import AlreadyAnswered, ApprovalState, CallContext, Channel, Role
from foreman.tools.executors.base import Invocation
from foreman.tools.request import ToolRequest
from foreman.tools.services import ToolServices, build_tool_services
from foreman.tools.spec import ToolSpec

from .conftest import FakeSession, Jobs, Recorder, contact_ctx, make_settings, owner_ctx


def req(name: str, args: Any, call_id: str = "call_1") -> ToolRequest:
    text = args if isinstance(args, str) else json.dumps(args)
    return ToolRequest(call_id=call_id, name=name, arguments=text)


SMS = {"to": "+15550109999", "body": "running late"}


async def audit_rows(services: ToolServices) -> list[dict[str, Any]]:
    await services.jobs.drain(wait_s=5)
    return list(reversed(await services.audit.query(100)))


async def test_invalid_json_unknown_tool_and_bad_arguments_go_back_as_errors(
    services: ToolServices, recorder: Recorder
) -> None:
    s = FakeSession(owner_ctx())
    await services.jobs.handle(req("send_sms", "{not json", "c1"), s)
    await services.jobs.handle(req("launch_rocket", {}, "c2"), s)
    await services.jobs.handle(req("send_sms", {"to": "+15550109999"}, "c3"), s)
    await services.jobs.handle(req("send_sms", {"to": "555", "body": "x"}, "c4"), s)
    await services.jobs.handle(req("send_sms", "[1]", "c5"), s)
    assert "not valid JSON" in s.results["c1"]["error"]
    assert "unknown tool 'launch_rocket'" in s.results["c2"]["error"]
    assert "'body' is a required property" in s.results["c3"]["error"]
    assert s.results["c4"]["error"].startswith("invalid arguments: to:")
    assert "JSON object" in s.results["c5"]["error"]
    assert all(r["ok"] is False for r in s.results.values())
    assert recorder.runs == []
    assert services.approvals.pending() == []
    rows = await audit_rows(services)
    assert [r["decision"] for r in rows] == ["invalid"] * 5
    assert rows[0]["arguments"] == "{not json"


async def test_low_risk_runs_and_end_call_asks_no_response(
    services: ToolServices, recorder: Recorder
) -> None:
    s = FakeSession(contact_ctx())
    await services.jobs.handle(req("get_time", {}, "c1"), s)
    assert (await s.result("c1")) == {"ok": True, "result": {"done": "get_time", "args": {}}}
    await services.jobs.handle(req("end_call", {"reason": "bye"}, "c2"), s)
    assert (await s.result("c2"))["result"]["status"] == "ending"
    assert s.ended == ["end_call: bye"] and s.respond["c2"] is False and s.respond["c1"] is True
    rows = await audit_rows(services)
    assert [(r["tool"], r["decision"], r["outcome"]) for r in rows] == [
        ("get_time", "allow", "ok"),
        ("end_call", "allow", "ok"),
    ]


async def test_unknown_caller_is_not_offered_and_is_denied_high_risk(
    services: ToolServices, recorder: Recorder
) -> None:
    ctx = CallContext("s9", Channel.PHONE, Role.UNKNOWN, caller_id="+15550107777")
    names = {t["name"] for t in services.dispatcher.tool_definitions(ctx)}
    assert names == {"end_call", "get_time", "calendar_list"}
    owner_names = {t["name"] for t in services.dispatcher.tool_definitions(owner_ctx())}
    assert {"send_sms", "place_call", "send_email", "calendar_create"} <= owner_names
    assert all(
        set(t) == {"type", "name", "description", "parameters"}
        for t in services.dispatcher.tool_definitions(owner_ctx())
    )
    s = FakeSession(ctx)
    await services.jobs.handle(req("send_sms", SMS), s)
    out = await s.result("call_1")
    assert out["ok"] is False and out["error"].startswith("denied: ")
    assert recorder.runs == [] and services.approvals.pending() == []
    assert [r["decision"] for r in await audit_rows(services)] == ["deny"]


async def test_pending_approval_holds_the_output_until_approved(
    services: ToolServices, recorder: Recorder, clock: ManualClock
) -> None:
    s = FakeSession(contact_ctx())
    await services.jobs.handle(req("send_sms", SMS), s)
    (prompt,) = services.approvals.pending()
    await s.wait_for(lambda: bool(s.notes))
    assert "NOT been done" in s.notes[0] and "send_sms" in s.notes[0]
    assert "read the action back" not in s.notes[0]  # a contact cannot confirm by voice
    assert s.results == {} and recorder.runs == []
    clock.advance(7.5)
    done = services.approvals.answer(prompt.id, True, approver="api", note=None)
    assert done.state is ApprovalState.APPROVED
    assert (await s.result("call_1"))["result"] == {"done": "send_sms", "args": SMS}
    assert [k for k, _ in s.log] == ["note", "run", "result"]
    (row,) = await audit_rows(services)
    assert (row["decision"], row["approver"], row["outcome"], row["wait_s"]) == (
        "approved",
        "api",
        "ok",
        7.5,
    )
    assert row["role"] == "contact" and row["caller"] == "Ann" and row["approval_id"] == prompt.id


async def test_denied_by_owner_never_runs(services: ToolServices, recorder: Recorder) -> None:
    s = FakeSession(contact_ctx())
    await services.jobs.handle(req("send_email", {"to": ["a@b.c"], "subject": "s", "body": "b"}), s)
    (prompt,) = services.approvals.pending()
    services.approvals.answer(prompt.id, False, approver="api", note="not today")
    out = await s.result("call_1")
    assert out == {"ok": False, "error": "denied by owner: not today; the action was NOT done"}
    assert recorder.runs == []
    (row,) = await audit_rows(services)
    assert (row["decision"], row["outcome"]) == ("denied", "not run")


async def test_timeout_with_manual_clock(
    services: ToolServices, recorder: Recorder, clock: ManualClock
) -> None:
    s = FakeSession(contact_ctx())
    await services.jobs.handle(req("send_sms", SMS), s)
    (prompt,) = services.approvals.pending()
    clock.advance(119.9)
    assert services.approvals.expire_due() == []
    clock.advance(0.1)
    assert [a.id for a in services.approvals.expire_due()] == [prompt.id]
    out = await s.result("call_1")
    assert out == {"ok": False, "error": "approval timed out after 120 s; the action was NOT done"}
    with pytest.raises(AlreadyAnswered):
        services.approvals.answer(prompt.id, True, approver="api")
    assert recorder.runs == []
    (row,) = await audit_rows(services)
    assert (row["decision"], row["wait_s"]) == ("expired", 120.0)


async def test_late_answer_after_deadline_expires_instead(
    services: ToolServices, recorder: Recorder, clock: ManualClock
) -> None:
    s = FakeSession(contact_ctx())
    await services.jobs.handle(req("send_sms", SMS), s)
    (prompt,) = services.approvals.pending()
    clock.advance(121)  # the timer has not fired yet: the answer itself finds it overdue
    with pytest.raises(AlreadyAnswered) as err:
        services.approvals.answer(prompt.id, True, approver="api")
    assert err.value.approval.state is ApprovalState.EXPIRED
    assert "timed out" in (await s.result("call_1"))["error"]
    assert recorder.runs == []


async def test_hang_up_before_answer_cancels_and_answer_conflicts(
    services: ToolServices, recorder: Recorder
) -> None:
    s = FakeSession(contact_ctx("s1"))
    other = FakeSession(contact_ctx("s2"))
    await services.jobs.handle(req("send_sms", SMS), s)
    await services.jobs.handle(req("send_sms", SMS, "c_other"), other)
    mine = next(a for a in services.approvals.pending() if a.ctx.session_id == "s1")
    services.jobs.hang_up("s1")
    with pytest.raises(AlreadyAnswered) as err:
        services.approvals.answer(mine.id, True, approver="api")
    assert err.value.approval.state is ApprovalState.CANCELLED
    await services.jobs.drain("s1", wait_s=5)
    assert s.results == {} and recorder.runs == []
    assert [a.ctx.session_id for a in services.approvals.pending()] == ["s2"]
    services.jobs.hang_up("s2")
    rows = [r for r in await audit_rows(services) if r["session_id"] == "s1"]
    assert [(r["decision"], r["outcome"]) for r in rows] == [("cancelled", "cancelled")]


async def test_answer_racing_hang_up_never_runs_after_the_call_ended(
    services: ToolServices, recorder: Recorder
) -> None:
    s = FakeSession(contact_ctx("s1"))
    await services.jobs.handle(req("send_sms", SMS), s)
    (prompt,) = services.approvals.pending()
    # Both arrive in the same loop iteration: the approval wins the book, the hang-up wins
    # the task, so the tool never starts for a caller who is gone.
    services.approvals.answer(prompt.id, True, approver="api")
    services.jobs.hang_up("s1")
    await services.jobs.drain("s1", wait_s=5)
    assert recorder.runs == [] and s.results == {}
    (row,) = await audit_rows(services)
    assert (row["decision"], row["outcome"], row["approver"]) == ("approved", "cancelled", "api")


async def test_hang_up_while_tool_runs_cancels_it(
    services: ToolServices, recorder: Recorder
) -> None:
    recorder.gate = asyncio.Event()  # never set: the tool hangs
    s = FakeSession(contact_ctx("s1"))
    await services.jobs.handle(req("get_time", {}), s)
    await asyncio.wait_for(recorder.started.wait(), 5)
    assert services.jobs.running("s1") == 1
    services.jobs.hang_up("s1")
    await services.jobs.drain("s1", wait_s=5)
    assert services.jobs.running("s1") == 0 and s.results == {}
    (row,) = await audit_rows(services)
    assert row["outcome"] == "cancelled"


async def test_owner_confirms_by_voice(
    services: ToolServices, recorder: Recorder, clock: ManualClock
) -> None:
    s = FakeSession(owner_ctx())
    await services.jobs.handle(req("send_sms", SMS), s)
    await s.wait_for(lambda: bool(s.notes))
    assert "read the action back" in s.notes[0]
    services.dispatcher.on_user_utterance(s, "yes please")  # within the grace: the request
    assert services.approvals.pending()
    clock.advance(2)
    services.dispatcher.on_user_utterance(s, "what time is it in Paris")
    assert services.approvals.pending()
    services.dispatcher.on_user_utterance(s, "Yes, go ahead.")
    assert services.approvals.pending() == []
    assert (await s.result("call_1"))["ok"] is True
    (row,) = await audit_rows(services)
    assert (row["decision"], row["approver"]) == ("approved", "owner (voice)")


async def test_owner_says_no_by_voice(
    services: ToolServices, recorder: Recorder, clock: ManualClock
) -> None:
    s = FakeSession(owner_ctx())
    await services.jobs.handle(req("send_sms", SMS), s)
    clock.advance(2)
    services.dispatcher.on_user_utterance(s, "no, don't")
    assert (await s.result("call_1"))["error"].startswith("denied by owner")
    assert recorder.runs == []


@pytest.mark.parametrize(
    "ctx",
    [contact_ctx(), owner_ctx(verified=False), owner_ctx(channel=Channel.CHAT)],
    ids=["contact", "unverified-owner", "owner-in-chat"],
)
async def test_nobody_else_confirms_by_voice(
    services: ToolServices, recorder: Recorder, clock: ManualClock, ctx: CallContext
) -> None:
    s = FakeSession(ctx)
    await services.jobs.handle(req("send_sms", SMS), s)
    clock.advance(5)
    services.dispatcher.on_user_utterance(s, "yes")
    assert len(services.approvals.pending()) == 1
    assert recorder.runs == [] and s.results == {}


async def test_other_sessions_yes_does_not_confirm(
    services: ToolServices, recorder: Recorder, clock: ManualClock
) -> None:
    a, b = FakeSession(owner_ctx("s1")), FakeSession(owner_ctx("s2"))
    await services.jobs.handle(req("send_sms", SMS), a)
    clock.advance(5)
    services.dispatcher.on_user_utterance(b, "yes")
    assert len(services.approvals.pending()) == 1 and recorder.runs == []


async def test_slow_tool_tells_the_model_it_is_still_running(
    tmp_path: Path, clock: ManualClock
) -> None:
    rec = Recorder()
    rec.gate = asyncio.Event()
    settings = make_settings(tmp_path)
    settings = settings.replace(
        tools=settings.tools.__class__(dir=settings.tools.dir, still_running_after_s=0.05)
    )
    svc = build_tool_services(settings, EventBus(), clock=clock, executors=rec.registry(settings))
    try:
        s = FakeSession(contact_ctx())
        await Jobs(svc).handle(req("get_time", {}), s)
        await s.wait_for(lambda: any("still running" in n for n in s.notes))
        assert s.results == {}
        rec.gate.set()
        assert (await s.result("call_1"))["ok"] is True
    finally:
        await svc.aclose()


async def test_tool_timeout_and_failures(tmp_path: Path, clock: ManualClock) -> None:
    async def hang(args: dict[str, Any], inv: Invocation) -> None:
        await asyncio.Event().wait()

    async def refuse(args: dict[str, Any], inv: Invocation) -> None:
        raise ToolError("the printer is on fire")

    async def crash(args: dict[str, Any], inv: Invocation) -> None:
        raise RuntimeError("boom")

    params = {"type": "object", "properties": {}}
    specs = {
        n: ToolSpec(n, n, params, "low", f"python:{__name__}:unused", 0.1, {})
        for n in ("hang", "refuse", "crash")
    }
    settings = make_settings(tmp_path)
    from foreman.tools.executors.base import ExecutorRegistry

    reg = ExecutorRegistry()
    for n, fn in (("hang", hang), ("refuse", refuse), ("crash", crash)):
        specs[n] = ToolSpec(n, n, params, "low", n, 0.1, {})
        reg.register(n, fn)
    svc = build_tool_services(settings, EventBus(), clock=clock, executors=reg, specs=specs)
    try:
        s = FakeSession(contact_ctx())
        jobs = Jobs(svc)
        for n in ("hang", "refuse", "crash"):
            await jobs.handle(req(n, {}, n), s)
        assert (await s.result("hang"))[
            "error"
        ] == "hang timed out after 0.1 s; it may not have completed"
        assert (await s.result("refuse"))["error"] == "the printer is on fire"
        assert (await s.result("crash"))["error"] == "crash failed: RuntimeError: boom"
        await jobs.drain()
        rows = list(reversed(await svc.audit.query(100)))
        assert {r["tool"]: r["outcome"] for r in rows} == {
            "hang": "timeout",
            "refuse": "error: the printer is on fire",
            "crash": "error: RuntimeError",
        }
    finally:
        await svc.aclose()


async def test_bus_carries_prompt_and_decision(services: ToolServices) -> None:
    sub = services.bus.subscribe()
    s = FakeSession(contact_ctx())
    await services.jobs.handle(req("send_sms", SMS), s)
    (prompt,) = services.approvals.pending()
    services.approvals.answer(prompt.id, True, approver="api")
    await s.result("call_1")
    await services.jobs.drain(wait_s=5)
    kinds = []
    while (ev := sub.get_nowait()) is not None:
        kinds.append((ev.kind, ev.data.get("state")))
    assert ("approval.prompt", "pending") in kinds and ("approval.decided", "approved") in kinds
    assert [k for k, _ in kinds].index("approval.prompt") < [k for k, _ in kinds].index(
        "approval.decided"
    )
    assert ("tool.result", None) in kinds and ("tool.audit", None) in kinds
