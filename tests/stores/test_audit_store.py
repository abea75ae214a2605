"""AuditStore contract: append-only, newest first, per-session queries, the row shape the
audit API returns today."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from foreman.stores import AuditRecord, AuditStore

from .conftest import WALL, durable, open_store


def rec(i: int = 0, session_id: str = "call-CA1", **kw: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "caller": "+14155550100",
        "role": "contact",
        "channel": "phone",
        "tool": "get_time",
        "call_id": f"call_{i}",
        "arguments": {"tz": "Europe/Paris"},
        "decision": "allow",
        "reason": "low risk",
        "outcome": "ok",
        **kw,
    }
    return AuditRecord(at=WALL + i, session_id=session_id, **fields)


def row(i: int, row_id: int, **kw: Any) -> dict[str, Any]:
    r = rec(i, **kw)
    return {
        "id": row_id,
        "at": r.at,
        "session_id": r.session_id,
        "caller": r.caller,
        "role": r.role,
        "channel": r.channel,
        "tool": r.tool,
        "call_id": r.call_id,
        "arguments": r.arguments,
        "decision": r.decision,
        "reason": r.reason,
        "outcome": r.outcome,
        "approver": r.approver,
        "approval_id": r.approval_id,
        "wait_s": r.wait_s,
    }


async def test_implements_the_interface(audit_store: Any) -> None:
    assert isinstance(audit_store, AuditStore)


async def test_rows_come_back_newest_first_with_growing_ids(audit_store: Any) -> None:
    ids = [await audit_store.record(rec(i)) for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert await audit_store.query(10) == [row(i, ids[i]) for i in (2, 1, 0)]
    assert await audit_store.query(2) == [row(2, ids[2]), row(1, ids[1])]
    assert await audit_store.query(0) == []
    assert await audit_store.query(-5) == []


async def test_query_by_session(audit_store: Any) -> None:
    a = await audit_store.record(rec(0, "call-CA1"))
    await audit_store.record(rec(1, "desk-1"))
    c = await audit_store.record(rec(2, "call-CA1"))
    assert [r["id"] for r in await audit_store.query(10, "call-CA1")] == [c, a]
    assert [r["id"] for r in await audit_store.query(1, "call-CA1")] == [c]
    assert await audit_store.query(10, "nobody") == []


async def test_approval_fields_are_kept(audit_store: Any) -> None:
    extra = {"decision": "approved", "approver": "owner", "approval_id": "apr_1", "wait_s": 4.5}
    row_id = await audit_store.record(rec(0, **extra))
    assert await audit_store.query(1) == [row(0, row_id, **extra)]


async def test_arguments_json_cannot_hold_are_stored_as_text(audit_store: Any) -> None:
    await audit_store.record(rec(0, arguments={"when": WALL, "pair": (1, 2), "odd": {3}}))
    (got,) = await audit_store.query(1)
    assert got["arguments"] == {"when": WALL, "pair": [1, 2], "odd": "{3}"}


async def test_returned_rows_are_copies(audit_store: Any) -> None:
    await audit_store.record(rec(0))
    (first,) = await audit_store.query(1)
    first["arguments"]["tz"] = "changed"
    assert (await audit_store.query(1))[0]["arguments"] == {"tz": "Europe/Paris"}


@pytest.mark.parametrize("impl", durable("audit"))
async def test_rows_survive_reopening(impl: str, db_path: Path) -> None:
    store = await open_store("audit", impl, db_path)
    row_id = await store.record(rec(0))
    await store.aclose()
    reopened = await open_store("audit", impl, db_path)
    try:
        assert await reopened.query(5) == [row(0, row_id)]
        assert await reopened.record(rec(1)) > row_id
    finally:
        await reopened.aclose()
