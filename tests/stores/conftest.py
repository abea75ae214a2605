"""Every store implementation, by interface, for the contract suites.

Each contract test runs once per implementation listed here: a Redis or PostgreSQL store
joins the suites by adding one entry (`durable` says it survives being closed and
reopened on the same address, which the durability tests then check).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from foreman.stores import (
    MemoryApprovalStore,
    MemoryAuditStore,
    MemoryCallRecordStore,
    MemoryConversationStore,
    MemoryOutboundIntentStore,
    MemorySessionRegistryStore,
    MemoryStreamTokenStore,
    SqliteApprovalStore,
    SqliteAuditStore,
    SqliteCallRecordStore,
    SqliteConversationStore,
    SqliteSessionRegistryStore,
)

TOKEN_TTL_S = 60.0
ADMITTED_TTL_S = 600.0
INTENT_TTL_S = 60.0
WALL = 1_790_000_000.0  # a plausible unix time for records


@dataclass(frozen=True)
class Impl:
    open: Callable[[Path], Awaitable[Any]]
    durable: bool = False


async def _ready(store: Any) -> Any:
    return store


IMPLS: dict[str, dict[str, Impl]] = {
    "tokens": {
        "memory": Impl(
            lambda _: _ready(MemoryStreamTokenStore(TOKEN_TTL_S, admitted_ttl_s=ADMITTED_TTL_S))
        ),
    },
    "intents": {"memory": Impl(lambda _: _ready(MemoryOutboundIntentStore(INTENT_TTL_S)))},
    "approvals": {
        "memory": Impl(lambda _: _ready(MemoryApprovalStore())),
        "sqlite": Impl(SqliteApprovalStore.open, durable=True),
    },
    "sessions": {
        "memory": Impl(lambda _: _ready(MemorySessionRegistryStore())),
        "sqlite": Impl(SqliteSessionRegistryStore.open, durable=True),
    },
    "audit": {
        "memory": Impl(lambda _: _ready(MemoryAuditStore())),
        "sqlite": Impl(SqliteAuditStore.open, durable=True),
    },
    "calls": {
        "memory": Impl(lambda _: _ready(MemoryCallRecordStore())),
        "sqlite": Impl(SqliteCallRecordStore.open, durable=True),
    },
    "conversations": {
        "memory": Impl(lambda _: _ready(MemoryConversationStore())),
        "sqlite": Impl(SqliteConversationStore.open, durable=True),
    },
}


def names(kind: str) -> list[str]:
    return sorted(IMPLS[kind])


def durable(kind: str) -> list[str]:
    return sorted(name for name, impl in IMPLS[kind].items() if impl.durable)


async def open_store(kind: str, name: str, db_path: Path) -> Any:
    return await IMPLS[kind][name].open(db_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "foreman.db"


async def _opened(kind: str, request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Any]:
    store = await open_store(kind, request.param, db_path)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture(params=names("tokens"))
async def token_store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Any]:
    async for store in _opened("tokens", request, db_path):
        yield store


@pytest.fixture(params=names("intents"))
async def intent_store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Any]:
    async for store in _opened("intents", request, db_path):
        yield store


@pytest.fixture(params=names("approvals"))
async def approval_store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Any]:
    async for store in _opened("approvals", request, db_path):
        yield store


@pytest.fixture(params=names("sessions"))
async def session_store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Any]:
    async for store in _opened("sessions", request, db_path):
        yield store


@pytest.fixture(params=names("audit"))
async def audit_store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Any]:
    async for store in _opened("audit", request, db_path):
        yield store


@pytest.fixture(params=names("calls"))
async def call_store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Any]:
    async for store in _opened("calls", request, db_path):
        yield store


@pytest.fixture(params=names("conversations"))
async def conversation_store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Any]:
    async for store in _opened("conversations", request, db_path):
        yield store
