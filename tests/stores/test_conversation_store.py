"""ConversationStore contract: conversations newest first, turns numbered in append order
with their provenance kept, the owner's latest conversation, durable appends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foreman.stores import (
    OWNER_PARTY,
    ConversationRecord,
    ConversationStore,
    MemoryConversationStore,
    Turn,
)
from foreman.stores.conversations import TURN_KINDS, role_of

from .conftest import WALL, durable, open_store


def conversation(cid: str = "conv-1", party: str = OWNER_PARTY, at: float = WALL) -> Any:
    return ConversationRecord(id=cid, party=party, created_at=at, updated_at=at)


def turn(text: str = "hello", kind: Any = "typed", at: float = WALL + 1, **kw: Any) -> Turn:
    fields: dict[str, Any] = {"channel": "chat", "session_id": "chat-1", **kw}
    return Turn(kind=kind, text=text, at=at, **fields)


async def test_implements_the_interface(conversation_store: Any) -> None:
    assert isinstance(conversation_store, ConversationStore)


async def test_turns_are_numbered_in_append_order_with_their_provenance(
    conversation_store: Any,
) -> None:
    await conversation_store.create(conversation())
    cut = {"cut": True, "heard_ms": 1200, "audio_ms": 4000, "full_text": "Sunny all day."}
    stored = [
        await conversation_store.append("conv-1", turn("what's the weather?")),
        await conversation_store.append(
            "conv-1", turn("Sunny", "speech", channel="phone", session_id="call-CA1", data=cut)
        ),
        await conversation_store.append(
            "conv-1",
            turn(
                "send_sms",
                "tool_call",
                data={"call_id": "c1", "name": "send_sms", "arguments": {"to": "+1"}},
            ),
        ),
    ]
    assert [t.seq for t in stored] == [1, 2, 3]
    assert all(t.conversation_id == "conv-1" for t in stored)
    got = await conversation_store.turns("conv-1")
    assert got == stored
    assert got[1].data == cut and got[1].channel == "phone" and got[1].role == "assistant"
    assert await conversation_store.turns("conv-1", after=1, limit=1) == stored[1:2]
    assert await conversation_store.last_turns("conv-1", 2) == stored[1:]
    assert await conversation_store.last_turns("conv-1", 0) == []
    assert await conversation_store.session_turns("call-CA1") == stored[1:2]


async def test_the_title_is_the_first_user_words_and_activity_moves_updated_at(
    conversation_store: Any,
) -> None:
    await conversation_store.create(conversation())
    await conversation_store.append("conv-1", turn("Summary", "summary", at=WALL + 1))
    await conversation_store.append("conv-1", turn("  text   Ann\nplease " * 20, at=WALL + 5))
    await conversation_store.append("conv-1", turn("later", at=WALL + 3))  # out of order
    got = await conversation_store.get("conv-1")
    assert got is not None and got.turns == 3 and got.updated_at == WALL + 5
    assert got.title.startswith("text Ann please text Ann") and len(got.title) == 80
    assert got.title.endswith("…")


async def test_newest_activity_first_and_the_latest_of_a_party(conversation_store: Any) -> None:
    for i, party in enumerate([OWNER_PARTY, "caller:+1555", OWNER_PARTY]):
        await conversation_store.create(conversation(f"conv-{i}", party, WALL + i))
    await conversation_store.append("conv-0", turn(at=WALL + 10))  # the oldest becomes newest
    assert [c.id for c in await conversation_store.newest()] == ["conv-0", "conv-2", "conv-1"]
    assert [c.id for c in await conversation_store.newest(1)] == ["conv-0"]
    latest = await conversation_store.latest(OWNER_PARTY)
    assert latest is not None and latest.id == "conv-0"
    assert await conversation_store.latest("caller:+nobody") is None


async def test_unknown_and_duplicate_conversations(conversation_store: Any) -> None:
    await conversation_store.create(conversation())
    with pytest.raises(ValueError):
        await conversation_store.create(conversation())
    with pytest.raises(KeyError):
        await conversation_store.append("conv-unknown", turn())
    assert await conversation_store.get("conv-unknown") is None
    assert await conversation_store.turns("conv-unknown") == []


async def test_concurrent_appends_never_share_a_number(conversation_store: Any) -> None:
    await conversation_store.create(conversation())
    stored = await asyncio.gather(
        *(conversation_store.append("conv-1", turn(f"t{i}")) for i in range(40))
    )
    assert sorted(t.seq for t in stored) == list(range(1, 41))
    by_seq = {t.seq: t.text for t in await conversation_store.turns("conv-1")}
    assert by_seq == {t.seq: t.text for t in stored}


@pytest.mark.parametrize("name", durable("conversations"))
async def test_turns_survive_reopening(name: str, db_path: Path) -> None:
    store = await open_store("conversations", name, db_path)
    await store.create(conversation())
    first = await store.append("conv-1", turn("remember me", data={"n": [1, 2]}))
    await store.aclose()
    again = await open_store("conversations", name, db_path)
    try:
        assert await again.turns("conv-1") == [first]
        assert (await again.append("conv-1", turn("next"))).seq == 2
    finally:
        await again.aclose()


def test_every_kind_has_a_role_and_bad_turns_are_refused() -> None:
    assert {role_of(k) for k in TURN_KINDS} == {"user", "assistant", "tool", "system"}
    with pytest.raises(ValueError, match="kind"):
        turn(kind="shout")
    with pytest.raises(ValueError, match="JSON"):
        turn(data={"x": object()})
    with pytest.raises(ValueError):
        ConversationRecord(id="", party=OWNER_PARTY, created_at=WALL, updated_at=WALL)


_text = st.text(max_size=30)
_data = st.dictionaries(
    st.text(max_size=5), st.none() | st.integers() | st.text(max_size=5), max_size=3
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    turns=st.lists(
        st.tuples(st.sampled_from(TURN_KINDS), _text, _data, st.floats(0, 1e4)), max_size=12
    )
)
async def test_the_memory_store_returns_what_the_sqlite_store_returns(
    tmp_path_factory: pytest.TempPathFactory, turns: list[tuple[Any, str, Any, float]]
) -> None:
    from foreman.stores import SqliteConversationStore

    path = tmp_path_factory.mktemp("conv") / "f.db"
    sqlite = await SqliteConversationStore.open(path)
    memory = MemoryConversationStore()
    try:
        for store in (sqlite, memory):
            await store.create(conversation())
            for kind, text, data, dt in turns:
                await store.append("conv-1", turn(text, kind, at=WALL + dt, data=data))
        assert await sqlite.turns("conv-1") == await memory.turns("conv-1")
        assert await sqlite.get("conv-1") == await memory.get("conv-1")
    finally:
        await sqlite.aclose()
