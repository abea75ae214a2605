"""No SQLite store method runs on the event loop: every statement executes on a worker
thread, and a store waiting on a locked database leaves the loop free."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from foreman.stores import (
    CallRecord,
    ConversationRecord,
    SessionRecord,
    SqliteApprovalStore,
    SqliteAuditStore,
    SqliteCallRecordStore,
    SqliteConversationStore,
    SqliteSessionRegistryStore,
    Turn,
)
from foreman.stores.sqlite import db as sqlite_db

from .conftest import WALL
from .test_approval_store import prompt
from .test_audit_store import rec

Call = Callable[[Any], Awaitable[Any]]

SESSION = SessionRecord("s1", "chat", "chat", "me", WALL, "mock")
CALL = CallRecord("CA1", "inbound", "+1", "+2", "unknown", False, WALL)
CONVERSATION = ConversationRecord("conv-1", "owner", WALL, WALL)
TURN = Turn("typed", "hello", "chat", "chat-1", WALL)

EVERY_METHOD: dict[type[Any], list[Call]] = {
    SqliteApprovalStore: [
        lambda s: s.save(prompt()),
        lambda s: s.get("apr_1"),
        lambda s: s.pending(),
        lambda s: s.expire_orphans(WALL, "orphan"),
    ],
    SqliteSessionRegistryStore: [
        lambda s: s.upsert(SESSION),
        lambda s: s.get("s1"),
        lambda s: s.live(),
        lambda s: s.remove("s1"),
        lambda s: s.mark_interrupted(WALL),
    ],
    SqliteAuditStore: [lambda s: s.record(rec()), lambda s: s.query(10, "call-CA1")],
    SqliteCallRecordStore: [
        lambda s: s.begin(CALL),
        lambda s: s.finish("CA1", WALL + 1, "done"),
        lambda s: s.get("CA1"),
        lambda s: s.recent(5),
        lambda s: s.mark_interrupted(WALL),
    ],
    SqliteConversationStore: [
        lambda s: s.create(CONVERSATION),
        lambda s: s.append("conv-1", TURN),
        lambda s: s.get("conv-1"),
        lambda s: s.latest("owner"),
        lambda s: s.newest(5),
        lambda s: s.turns("conv-1"),
        lambda s: s.last_turns("conv-1", 5),
        lambda s: s.session_turns("chat-1"),
    ],
}
WRITES: dict[type[Any], Call] = {kind: calls[0] for kind, calls in EVERY_METHOD.items()}


@pytest.mark.parametrize("kind", list(EVERY_METHOD), ids=lambda k: k.__name__)
async def test_every_statement_runs_off_the_loop_thread(
    kind: type[Any], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    connect_threads: list[int] = []
    real_connect = sqlite3.connect

    def recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connect_threads.append(threading.get_ident())
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite_db.sqlite3, "connect", recording_connect)
    store = await kind.open(db_path)
    statement_threads: list[int] = []
    store._conn.set_trace_callback(lambda _sql: statement_threads.append(threading.get_ident()))
    for call in EVERY_METHOD[kind]:
        before = len(statement_threads)
        await call(store)
        assert len(statement_threads) > before, "the method ran no statement at all"
    await store.aclose()
    assert connect_threads and loop_thread not in connect_threads
    assert loop_thread not in statement_threads


@pytest.mark.parametrize("kind", list(WRITES), ids=lambda k: k.__name__)
async def test_a_write_waiting_on_a_locked_database_leaves_the_loop_free(
    kind: type[Any], db_path: Path
) -> None:
    store = await kind.open(db_path)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        write = asyncio.create_task(WRITES[kind](store))
        ticks = 0
        for _ in range(50):  # the loop keeps turning while the write waits
            await asyncio.sleep(0)
            ticks += 1
        # A store that ran SQLite on the loop would have blocked above until its busy
        # timeout ran out, then failed with "database is locked".
        assert not write.done()
        assert ticks == 50
        holder.execute("COMMIT")
        await write
    finally:
        holder.close()
        await store.aclose()
