"""The audit log survives a restart; the approval timer fires on a real clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

from foreman.bus import EventBus
from foreman.clock import SystemClock
from foreman.config import PolicyConfig
from foreman.policy import ApprovalState, ToolCall
from foreman.stores import AuditRecord, SqliteAuditStore
from foreman.testing.timeouts import unit
from foreman.tools.approval_service import ApprovalService
from foreman.tools.services import build_tool_services

from .conftest import FakeSession, Recorder, contact_ctx, make_settings


def record(tool: str, decision: str) -> AuditRecord:
    return AuditRecord(
        at=1.0,
        session_id="s",
        caller="Ann",
        role="contact",
        channel="phone",
        tool=tool,
        call_id="c",
        arguments={"to": "+1555", "n": [1, 2]},
        decision=decision,
        reason="r",
        outcome="ok",
        approver="api",
        wait_s=2.5,
    )


async def test_audit_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "foreman.db"
    log = await SqliteAuditStore.open(path)
    await log.record(record("send_sms", "approved"))
    await log.record(record("get_time", "allow"))
    await log.aclose()
    reopened = await SqliteAuditStore.open(path)
    rows = await reopened.query(10)
    assert [(r["tool"], r["decision"]) for r in rows] == [
        ("get_time", "allow"),
        ("send_sms", "approved"),
    ]
    assert rows[1]["arguments"] == {"to": "+1555", "n": [1, 2]} and rows[1]["wait_s"] == 2.5
    assert [r["tool"] for r in await reopened.query(1)] == ["get_time"]
    assert await reopened.query(10, session_id="other") == []
    await reopened.aclose()


async def test_timer_expires_on_a_real_clock() -> None:
    service = ApprovalService(EventBus(), SystemClock(), timeout_s=0.15)
    try:
        approval = await asyncio.wait_for(
            service.request(ToolCall("c", "send_sms", {}, "high"), contact_ctx()), unit(5)
        )
        assert approval.state is ApprovalState.EXPIRED
        assert service.pending() == []
    finally:
        await service.aclose()


async def test_dispatcher_timeout_from_config_on_a_real_clock(tmp_path: Path) -> None:
    rec = Recorder()
    settings = make_settings(tmp_path).replace(policy=PolicyConfig(approval_timeout_s=0.2))
    svc = build_tool_services(
        settings, EventBus(), clock=SystemClock(), executors=rec.registry(settings)
    )
    try:
        s = FakeSession(contact_ctx())
        from foreman.tools.request import ToolRequest

        await svc.dispatcher.handle(
            ToolRequest("c1", "send_sms", '{"to": "+15550109999", "body": "x"}'), s
        )
        out = await s.result("c1")
        assert out["error"] == "approval timed out after 0.2 s; the action was NOT done"
        assert rec.runs == []
    finally:
        await svc.aclose()
