"""The embedded database: schema steps on `PRAGMA user_version`, a database written by the
first released version keeps its rows, and a file that cannot be used is one ConfigError
line naming `storage.db_path`."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from foreman.exceptions import ConfigError
from foreman.stores import (
    AuditRecord,
    CallRecord,
    SqliteAuditStore,
    SqliteCallRecordStore,
    open_embedded_stores,
)
from foreman.stores.sqlite import STEPS, migrate, open_database, schema_version

from .conftest import WALL
from .legacy_db import LegacyDatabase


def _old_call(sid: str, ended_at: float) -> dict[str, object]:
    return {
        "call_sid": sid,
        "direction": "outbound",
        "from": "+14155550199",
        "to": "+14155550100",
        "role": "owner",
        "verified": True,
        "started_at": ended_at - 60,
        "ended_at": ended_at,
        "reason": "end_call",
        "purpose": "remind about dinner",
    }


def _audit(i: int) -> AuditRecord:
    return AuditRecord(
        at=WALL + i,
        session_id=f"call-CA{i % 2}",
        caller="+14155550100",
        role="owner",
        channel="phone",
        tool="send_email",
        call_id=f"call_{i}",
        arguments={"to": "ann@example.com", "n": i},
        decision="approved",
        reason="the owner said yes",
        outcome="sent",
        approver="owner",
        approval_id=f"apr_{i}",
        wait_s=2.5,
    )


def _schema(conn: sqlite3.Connection) -> dict[str, object]:
    """Tables with their columns and indexes (not the CREATE text, whose spacing differs)."""
    out: dict[str, object] = {}
    names = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    for (name,) in names:
        cols = [tuple(c) for c in conn.execute(f"PRAGMA table_info({name})").fetchall()]
        idx = sorted(tuple(i)[1:3] for i in conn.execute(f"PRAGMA index_list({name})").fetchall())
        out[name] = (cols, idx)
    return out


async def test_a_database_from_the_first_version_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = LegacyDatabase(path)
    for i in range(5):
        old.add_audit(_audit(i))
    old_rows = old.audit_rows()
    old_by_session = old.audit_rows(session_id="call-CA1")
    for i, end in enumerate((WALL + 30, WALL + 10, WALL + 20)):
        old.add_call(_old_call(f"CA{i}", end))
    old_recent = old.recent_calls()
    old.close()
    with sqlite3.connect(path) as conn:
        assert schema_version(conn) == 0

    audit_store = await SqliteAuditStore.open(path)
    call_store = await SqliteCallRecordStore.open(path)
    try:
        assert await audit_store.query(100) == old_rows
        assert await audit_store.query(100, "call-CA1") == old_by_session
        assert [c.to_dict() for c in await call_store.recent(50)] == old_recent
        # New rows continue after the old ones; a live call can now be written.
        assert await audit_store.record(_audit(9)) > old_rows[0]["id"]
        assert await call_store.begin(
            CallRecord("CA9", "inbound", "+1", "+2", "unknown", False, WALL)
        )
    finally:
        await audit_store.aclose()
        await call_store.aclose()

    with sqlite3.connect(path) as conn:
        assert schema_version(conn) == len(STEPS)
        migrated = _schema(conn)
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    migrate(fresh, STEPS)
    assert _schema(fresh) == migrated  # both paths end at the same schema


def test_the_step_list_is_append_only() -> None:
    """Released steps never change order; a new table is one more function at the end."""
    assert [s.__name__ for s in STEPS] == [
        "tool_audit_and_calls",
        "calls_written_at_start",
        "tool_audit_by_session",
        "approvals",
        "live_sessions",
        "conversations",
        "heartbeat",
    ]


def test_an_added_step_runs_once_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    conn = open_database(path, STEPS)
    conn.execute("INSERT INTO live_sessions VALUES ('s', 'chat', 'chat', 'me', 1, 'mock', '{}')")
    runs: list[int] = []

    def conversation_history(c: sqlite3.Connection) -> None:
        runs.append(1)
        c.execute("CREATE TABLE conversation (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")

    steps = [*STEPS, conversation_history]
    assert migrate(conn, steps) == len(STEPS) + 1
    assert migrate(conn, steps) == len(STEPS) + 1
    conn.close()
    again = open_database(path, steps)
    assert runs == [1]
    assert again.execute("SELECT id FROM live_sessions").fetchall()[0][0] == "s"
    assert again.execute("SELECT count(*) FROM conversation").fetchone()[0] == 0
    again.close()


def test_a_failing_step_leaves_the_last_whole_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "f.db", isolation_level=None)

    def half_done(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half (x)")
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, [*STEPS, half_done])
    assert schema_version(conn) == len(STEPS)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    conn.close()


def test_concurrent_openers_apply_each_step_once(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    runs: list[str] = []

    def counted(c: sqlite3.Connection) -> None:
        runs.append(threading.current_thread().name)
        c.execute("CREATE TABLE counted (x)")

    errors: list[BaseException] = []
    conns: list[sqlite3.Connection] = []

    def opener() -> None:
        try:
            conns.append(open_database(path, [*STEPS, counted]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    assert errors == []
    assert len(runs) == 1


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(STEPS) + 3}")
    with pytest.raises(ConfigError, match=r"storage\.db_path: .*newer") as caught:
        open_database(path, STEPS)
    assert "\n" not in str(caught.value)


def _garbage_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database, just some notes\n" * 100)
    return path


def _under_a_file(tmp_path: Path) -> Path:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    return blocker / "foreman.db"


@pytest.mark.parametrize(
    "make_path",
    [lambda p: p, _garbage_file, _under_a_file],
    ids=["a-directory", "not-a-database", "parent-is-a-file"],
)
async def test_a_path_that_cannot_be_opened_is_a_config_error(
    tmp_path: Path, make_path: object
) -> None:
    bad = make_path(tmp_path)  # type: ignore[operator]
    with pytest.raises(ConfigError) as caught:
        await open_embedded_stores(bad)
    message = str(caught.value)
    assert message.startswith("storage.db_path: ")
    assert str(bad) in message
    assert "\n" not in message
    # One line for the operator: no chained exception to print a traceback from.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_the_default_path_under_home_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    stores = await open_embedded_stores("~/.local/share/foreman/foreman.db")
    await stores.aclose()
    assert (tmp_path / ".local/share/foreman/foreman.db").is_file()


async def test_every_connection_gets_the_small_page_cache(tmp_path: Path) -> None:
    from foreman.stores import open_embedded_stores
    from foreman.stores.embedded import open_embedded_stores_now
    from foreman.stores.sqlite.db import CACHE_KIB, connect

    def cache_kib(conn: sqlite3.Connection) -> int:
        return -int(conn.execute("PRAGMA cache_size").fetchone()[0])

    with contextlib.closing(sqlite3.connect(":memory:")) as default:
        assert cache_kib(default) != CACHE_KIB  # SQLite's own default differs
    with contextlib.closing(connect(tmp_path / "plain.db")) as plain:
        assert cache_kib(plain) == CACHE_KIB
    for stores in (
        await open_embedded_stores(tmp_path / "a.db"),
        open_embedded_stores_now(tmp_path / "b.db"),
    ):
        opened = [stores.approvals, stores.sessions, stores.audit, stores.calls]
        opened.append(stores.conversations)
        try:
            assert [cache_kib(s._conn) for s in opened] == [CACHE_KIB] * 5  # type: ignore[attr-defined]
        finally:
            await stores.aclose()
