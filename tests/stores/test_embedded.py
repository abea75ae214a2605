"""The embedded bundle: one file for every durable store, and start-up recovery after a
process died without closing anything."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from foreman.policy import ApprovalState
from foreman.stores import (
    INTERRUPTED_REASON,
    ApprovalStore,
    AuditStore,
    CallRecordStore,
    MemoryStreamTokenStore,
    OutboundIntent,
    OutboundIntentStore,
    SessionRegistryStore,
    StreamTokenStore,
    memory_stores,
    open_embedded_stores,
)
from foreman.testing.timeouts import unit

from .conftest import WALL

CRASHING_WRITER = textwrap.dedent(
    """
    import asyncio, os, sys
    from foreman.policy import ApprovalState
    from foreman.stores import (
        ApprovalRecord, AuditRecord, CallRecord, SessionRecord, open_embedded_stores,
    )

    WALL = float(sys.argv[2])

    async def main() -> None:
        stores = await open_embedded_stores(sys.argv[1])
        await stores.approvals.save(ApprovalRecord(
            "apr_left", "send_email", "call_1", {"to": "ann@example.com"}, "high",
            "call-CA1", "phone", "owner", "+14155550100", "Olga", ApprovalState.PENDING,
            WALL, WALL + 120))
        await stores.sessions.upsert(SessionRecord(
            "call-CA1", "phone", "phone", "+14155550100", WALL, "openai_realtime",
            {"queued_ms": 80}))
        await stores.calls.begin(CallRecord(
            "CA1", "inbound", "+14155550100", "+14155550199", "owner", True, WALL))
        await stores.calls.begin(CallRecord(
            "CA0", "inbound", "+14155550101", "+14155550199", "unknown", False, WALL - 50))
        await stores.calls.finish("CA0", WALL - 10, "caller hung up")
        await stores.audit.record(AuditRecord(
            WALL + 1, "call-CA1", "+14155550100", "owner", "phone", "send_email", "call_1",
            {"to": "ann@example.com"}, "needs_approval", "high risk", "pending"))
        print("written", flush=True)
        os._exit(9)  # die here: no close, no shutdown, like a killed process

    asyncio.run(main())
    """
)


async def test_recovery_after_a_process_died_mid_call(db_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_WRITER,
        str(db_path),
        str(WALL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), unit(30))
    assert child.returncode == 9, err.decode()
    assert out == b"written\n"

    stores = await open_embedded_stores(db_path)
    try:
        now = WALL + 300
        recovered = await stores.recover(now)
        (approval,) = recovered.approvals
        assert (approval.id, approval.state, approval.answered_at) == (
            "apr_left",
            ApprovalState.EXPIRED,
            now,
        )
        assert [(s.id, s.ended_at, s.status) for s in recovered.sessions] == [
            ("call-CA1", now, {"queued_ms": 80})
        ]
        assert [(c.call_sid, c.ended_at, c.reason) for c in recovered.calls] == [
            ("CA1", now, INTERRUPTED_REASON)
        ]
        recent = await stores.calls.recent()
        assert [(c.call_sid, c.reason) for c in recent] == [
            ("CA0", "caller hung up"),
            ("CA1", INTERRUPTED_REASON),
        ]
        assert [r["tool"] for r in await stores.audit.query(5)] == ["send_email"]
        again = await stores.recover(now + 1)
        assert (again.approvals, again.sessions, again.calls) == ([], [], [])
    finally:
        await stores.aclose()


@pytest.mark.parametrize("embedded", [True, False], ids=["sqlite", "memory"])
async def test_the_bundle_holds_one_store_per_interface(embedded: bool, db_path: Path) -> None:
    stores = (
        await open_embedded_stores(db_path, token_ttl_s=5)
        if embedded
        else memory_stores(token_ttl_s=5)
    )
    try:
        assert isinstance(stores.tokens, StreamTokenStore)
        assert isinstance(stores.intents, OutboundIntentStore)
        assert isinstance(stores.approvals, ApprovalStore)
        assert isinstance(stores.sessions, SessionRegistryStore)
        assert isinstance(stores.audit, AuditStore)
        assert isinstance(stores.calls, CallRecordStore)
        assert isinstance(stores.tokens, MemoryStreamTokenStore)
        token = await stores.tokens.issue("CA1", 0.0)
        assert token is not None
        assert not await stores.tokens.redeem(token, "CA1", 5.0)  # the ttl was passed on
        await stores.intents.put(OutboundIntent("out_1", "+14155550123", "", 0.0))
        assert await stores.intents.purge(5.0) == 1  # intents live as long as their token
    finally:
        await stores.aclose()
    assert await asyncio.to_thread(db_path.exists) == embedded


async def test_closed_sqlite_stores_refuse_work(db_path: Path) -> None:
    stores = await open_embedded_stores(db_path)
    await stores.aclose()
    await stores.aclose()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        await stores.calls.recent()
