"""Start-up after a crash: what was live is closed at the last heartbeat (the crash's time as
best known), never before its own start, and each orphaned approval prompt leaves an audit
row saying it expired and nothing was run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from foreman.api.app import _recover
from foreman.policy import ApprovalState
from foreman.stores import INTERRUPTED_REASON, open_embedded_stores

from .conftest import WALL, names, open_store
from .test_approval_store import prompt
from .test_call_record_store import live
from .test_session_registry_store import session


@pytest.mark.parametrize("impl", names("sessions"))
async def test_the_last_beat_is_kept(impl: str, db_path: Path) -> None:
    store = await open_store("sessions", impl, db_path)
    try:
        assert await store.last_beat() is None
        await store.beat(WALL)
        await store.beat(WALL + 5)
        assert await store.last_beat() == WALL + 5
    finally:
        await store.aclose()


async def test_a_crash_is_dated_to_the_last_heartbeat(db_path: Path) -> None:
    stores = await open_embedded_stores(db_path)
    await stores.calls.begin(live("CA1", started_at=WALL))
    await stores.calls.begin(live("CA2", started_at=WALL + 7))  # began after the last beat
    await stores.sessions.upsert(session("call-CA1", started_at=WALL))
    await stores.approvals.save(prompt("apr_1", created_at=WALL + 1))
    await stores.sessions.beat(WALL + 5)
    await stores.aclose()  # the process dies here: nothing was finished

    stores = await open_embedded_stores(db_path)
    try:
        recovered = await _recover(stores, WALL + 600)  # restarted ten minutes later
        assert recovered.crashed_at == WALL + 5
        ended = {c.call_sid: (c.ended_at, c.reason) for c in recovered.calls}
        assert ended == {
            "CA1": (WALL + 5, INTERRUPTED_REASON),
            "CA2": (WALL + 7, INTERRUPTED_REASON),
        }
        stored = await stores.calls.get("CA1")
        assert stored is not None and stored.ended_at == WALL + 5
        assert [s.ended_at for s in recovered.sessions] == [WALL + 5]
        assert await stores.sessions.live() == []
        approval = await stores.approvals.get("apr_1")
        assert approval is not None and approval.state is ApprovalState.EXPIRED
        assert approval.answered_at == WALL + 5
        (row,) = await stores.audit.query()
        expected: dict[str, Any] = {
            "tool": "send_email",
            "approval_id": "apr_1",
            "decision": "expired",
            "outcome": "not run",
            "session_id": "call-CA1",
            "at": WALL + 5,
            "wait_s": 4.0,
        }
        assert {k: row[k] for k in expected} == expected
        assert row["reason"] == "the server stopped before anyone answered"
        # A second start finds nothing left to close, and writes no second row.
        again = await _recover(stores, WALL + 700)
        assert (again.calls, again.sessions, again.approvals) == ([], [], [])
        assert len(await stores.audit.query()) == 1
    finally:
        await stores.aclose()


async def test_without_a_heartbeat_the_start_up_time_is_used(db_path: Path) -> None:
    stores = await open_embedded_stores(db_path)
    await stores.calls.begin(live("CA1", started_at=WALL))
    await stores.aclose()
    stores = await open_embedded_stores(db_path)
    try:
        recovered = await stores.recover(WALL + 60)
        assert recovered.crashed_at == WALL + 60
        assert [c.ended_at for c in recovered.calls] == [WALL + 60]
    finally:
        await stores.aclose()
