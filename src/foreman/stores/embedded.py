"""One bundle of every store, built from the embedded defaults.

`open_embedded_stores(db_path)` is what a single server uses: live state in memory, the
durable records in SQLite. A deployment with Redis or PostgreSQL builds `Stores` with its
own implementations instead; callers only see the interfaces.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from foreman.stores.conversations import ConversationStore, MemoryConversationStore
from foreman.stores.interfaces import (
    ApprovalStore,
    AuditStore,
    CallRecordStore,
    OutboundIntentStore,
    SessionRegistryStore,
    StreamTokenStore,
)
from foreman.stores.memory import (
    MemoryApprovalStore,
    MemoryAuditStore,
    MemoryCallRecordStore,
    MemoryOutboundIntentStore,
    MemorySessionRegistryStore,
    MemoryStreamTokenStore,
)
from foreman.stores.records import ApprovalRecord, CallRecord, SessionRecord
from foreman.stores.sqlite import (
    SqliteApprovalStore,
    SqliteAuditStore,
    SqliteCallRecordStore,
    SqliteConversationStore,
    SqliteSessionRegistryStore,
    SqliteStore,
)

S = TypeVar("S", bound=SqliteStore)

ORPHANED_APPROVAL_NOTE = "the server stopped before anyone answered"


@dataclass(frozen=True)
class Recovered:
    """What a crashed process left behind, now closed (see `Stores.recover`)."""

    approvals: list[ApprovalRecord]
    sessions: list[SessionRecord]
    calls: list[CallRecord]
    crashed_at: float  # the last heartbeat before the crash (or the start-up's own time)


@dataclass(frozen=True)
class Stores:
    tokens: StreamTokenStore
    intents: OutboundIntentStore
    approvals: ApprovalStore
    sessions: SessionRegistryStore
    audit: AuditStore
    calls: CallRecordStore
    conversations: ConversationStore = field(default_factory=MemoryConversationStore)

    async def recover(self, now: float) -> Recovered:
        """At start-up, before serving: close what a crashed process left open, dated to
        its last heartbeat (the crash's time as best known; `now`, unix time, when there is
        none). Orphaned prompts become expired, live sessions are dropped, live calls end as
        interrupted."""
        beat = await self.sessions.last_beat()
        crashed_at = now if beat is None else min(now, beat)
        return Recovered(
            approvals=await self.approvals.expire_orphans(crashed_at, ORPHANED_APPROVAL_NOTE),
            sessions=await self.sessions.mark_interrupted(crashed_at),
            calls=await self.calls.mark_interrupted(crashed_at),
            crashed_at=crashed_at,
        )

    async def aclose(self) -> None:
        """Close every store (each waits for its own work in flight)."""
        for store in (
            self.tokens,
            self.intents,
            self.approvals,
            self.sessions,
            self.audit,
            self.calls,
            self.conversations,
        ):
            await store.aclose()


def memory_stores(*, token_ttl_s: float = 60.0) -> Stores:
    """Everything in memory: for tests and throwaway runs (nothing survives the process).
    Outbound intents live as long as the stream token that goes with them."""
    return Stores(
        tokens=MemoryStreamTokenStore(token_ttl_s),
        intents=MemoryOutboundIntentStore(token_ttl_s),
        approvals=MemoryApprovalStore(),
        sessions=MemorySessionRegistryStore(),
        audit=MemoryAuditStore(),
        calls=MemoryCallRecordStore(),
    )


def open_embedded_stores_now(db_path: str | Path, *, token_ttl_s: float = 60.0) -> Stores:
    """`open_embedded_stores` on this thread, for start-up before serving (the server's
    app factory): the file is opened and migrated once, and nothing is waiting yet."""
    opened: list[SqliteStore] = []
    try:
        for kind in (
            SqliteApprovalStore,
            SqliteSessionRegistryStore,
            SqliteAuditStore,
            SqliteCallRecordStore,
            SqliteConversationStore,
        ):
            opened.append(kind.open_now(db_path))
    except BaseException:
        for store in opened:
            store._close()
        raise
    approvals, sessions, audit, calls, conversations = opened
    return Stores(
        tokens=MemoryStreamTokenStore(token_ttl_s),
        intents=MemoryOutboundIntentStore(token_ttl_s),
        approvals=approvals,  # type: ignore[arg-type]
        sessions=sessions,  # type: ignore[arg-type]
        audit=audit,  # type: ignore[arg-type]
        calls=calls,  # type: ignore[arg-type]
        conversations=conversations,  # type: ignore[arg-type]
    )


async def open_embedded_stores(db_path: str | Path, *, token_ttl_s: float = 60.0) -> Stores:
    """Tokens and intents in memory; approvals, sessions, audit, calls and conversations in
    the SQLite file `db_path` (created and migrated as needed). Raises ConfigError naming
    `storage.db_path` when the file cannot be used. Call `recover` before serving."""
    async with contextlib.AsyncExitStack() as opened:  # closes them all if one fails

        async def open_one(kind: type[S]) -> S:
            store = await kind.open(db_path)
            opened.push_async_callback(store.aclose)
            return store

        approvals = await open_one(SqliteApprovalStore)
        sessions = await open_one(SqliteSessionRegistryStore)
        audit = await open_one(SqliteAuditStore)
        calls = await open_one(SqliteCallRecordStore)
        conversations = await open_one(SqliteConversationStore)
        opened.pop_all()
    return Stores(
        tokens=MemoryStreamTokenStore(token_ttl_s),
        intents=MemoryOutboundIntentStore(token_ttl_s),
        approvals=approvals,
        sessions=sessions,
        audit=audit,
        calls=calls,
        conversations=conversations,
    )
