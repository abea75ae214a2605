"""ApprovalStore contract: a durable record of every prompt, final states never
overwritten, orphans of a crashed process expired at start-up."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from foreman.policy import ApprovalBook, ApprovalState, CallContext, Channel, Role, ToolCall
from foreman.stores import ApprovalRecord, ApprovalStore

from .conftest import WALL, durable, open_store

ORPHAN_NOTE = "the server stopped before anyone answered"


def prompt(approval_id: str = "apr_1", created_at: float = WALL, **kw: Any) -> ApprovalRecord:
    return ApprovalRecord(
        **{
            "id": approval_id,
            "tool": "send_email",
            "call_id": "call_7",
            "arguments": {"to": "ann@example.com", "cc": ["bob@example.com"]},
            "risk": "high",
            "session_id": "call-CA1",
            "channel": "phone",
            "role": "contact",
            "caller_id": "+14155550100",
            "caller_name": "Ann",
            "state": ApprovalState.PENDING,
            "created_at": created_at,
            "expires_at": created_at + 120,
            **kw,
        }
    )


def answered(rec: ApprovalRecord, state: ApprovalState, at: float, **kw: Any) -> ApprovalRecord:
    return replace(rec, state=state, answered_at=at, **kw)


async def test_implements_the_interface(approval_store: Any) -> None:
    assert isinstance(approval_store, ApprovalStore)


async def test_a_prompt_is_recorded_when_it_opens(approval_store: Any) -> None:
    assert await approval_store.save(prompt())
    assert await approval_store.get("apr_1") == prompt()
    assert await approval_store.pending() == [prompt()]
    assert await approval_store.get("apr_unknown") is None


async def test_every_state_change_is_recorded(approval_store: Any) -> None:
    await approval_store.save(prompt())
    done = answered(prompt(), ApprovalState.APPROVED, WALL + 5, approver="owner", note="ok")
    assert await approval_store.save(done)
    assert await approval_store.get("apr_1") == done
    assert await approval_store.pending() == []


@pytest.mark.parametrize("final", [s for s in ApprovalState if s is not ApprovalState.PENDING])
async def test_a_final_record_is_never_overwritten(
    approval_store: Any, final: ApprovalState
) -> None:
    first = answered(prompt(), final, WALL + 5, approver="api")
    assert await approval_store.save(first)
    other = ApprovalState.DENIED if final is ApprovalState.APPROVED else ApprovalState.APPROVED
    assert not await approval_store.save(answered(prompt(), other, WALL + 6, approver="late"))
    assert not await approval_store.save(prompt())  # not back to pending either
    assert not await approval_store.save(first)  # saving it again changes nothing
    assert await approval_store.get("apr_1") == first


async def test_saving_a_pending_prompt_twice_is_harmless(approval_store: Any) -> None:
    assert await approval_store.save(prompt())
    assert await approval_store.save(prompt())
    assert await approval_store.pending() == [prompt()]


async def test_pending_is_oldest_first(approval_store: Any) -> None:
    for approval_id, at in (("apr_c", WALL + 2), ("apr_b", WALL), ("apr_a", WALL)):
        await approval_store.save(prompt(approval_id, created_at=at))
    await approval_store.save(answered(prompt("apr_d"), ApprovalState.DENIED, WALL + 1))
    assert [r.id for r in await approval_store.pending()] == ["apr_a", "apr_b", "apr_c"]


async def test_orphans_are_expired_at_start_up(approval_store: Any) -> None:
    await approval_store.save(prompt("apr_2", created_at=WALL + 1))
    await approval_store.save(prompt("apr_1", created_at=WALL))
    approved = answered(prompt("apr_3"), ApprovalState.APPROVED, WALL + 3, approver="api")
    await approval_store.save(approved)
    now = WALL + 600
    expired = await approval_store.expire_orphans(now, ORPHAN_NOTE)
    assert [r.id for r in expired] == ["apr_1", "apr_2"]
    for rec in expired:
        assert rec.state is ApprovalState.EXPIRED
        assert (rec.answered_at, rec.note, rec.approver) == (now, ORPHAN_NOTE, None)
        assert await approval_store.get(rec.id) == rec
    assert await approval_store.get("apr_3") == approved
    assert await approval_store.pending() == []
    assert await approval_store.expire_orphans(now + 1, ORPHAN_NOTE) == []
    # An answer that arrives after the restart loses against the recorded expiry.
    assert not await approval_store.save(answered(prompt("apr_1"), ApprovalState.APPROVED, now))


async def test_arguments_come_back_as_json(approval_store: Any) -> None:
    rec = prompt(arguments={"slots": (1, 2), "nested": {"k": [None, True, 1.5]}})
    await approval_store.save(rec)
    got = await approval_store.get("apr_1")
    assert got is not None and got.arguments == {
        "slots": [1, 2],
        "nested": {"k": [None, True, 1.5]},
    }


def test_arguments_must_be_json() -> None:
    with pytest.raises(ValueError, match="JSON"):
        prompt(arguments={"when": object()})


async def test_records_follow_the_approval_book(approval_store: Any) -> None:
    """The approval service's flow: open a prompt, record it, answer it, record again."""
    book = ApprovalBook(id_factory=lambda: "apr_book")
    ctx = CallContext("call-CA9", Channel.PHONE, Role.OWNER, "+14155550100", "Olga", True)
    call = ToolCall("call_1", "unlock_door", {"door": "front"}, "high")
    mono_to_wall = WALL - 1000.0
    to_wall = lambda t: t + mono_to_wall  # noqa: E731

    opened = book.open(call=call, ctx=ctx, now=1000.0, timeout_s=120)
    assert await approval_store.save(ApprovalRecord.from_approval(opened, to_wall))
    stored = await approval_store.get("apr_book")
    assert stored is not None and stored.pending
    assert (stored.tool, stored.arguments, stored.risk) == (
        "unlock_door",
        {"door": "front"},
        "high",
    )
    assert (stored.session_id, stored.channel, stored.role) == ("call-CA9", "phone", "owner")
    assert (stored.caller_id, stored.caller_name) == ("+14155550100", "Olga")
    assert (stored.created_at, stored.expires_at) == (WALL, WALL + 120)

    done = book.answer("apr_book", False, approver="api", note="not now", now=1010.0)
    assert await approval_store.save(ApprovalRecord.from_approval(done, to_wall))
    final = await approval_store.get("apr_book")
    assert final is not None
    assert (final.state, final.approver, final.note) == (ApprovalState.DENIED, "api", "not now")
    assert final.answered_at == WALL + 10


@pytest.mark.parametrize("impl", durable("approvals"))
async def test_records_survive_reopening(impl: str, db_path: Path) -> None:
    store = await open_store("approvals", impl, db_path)
    await store.save(prompt("apr_1"))
    await store.save(answered(prompt("apr_2"), ApprovalState.APPROVED, WALL + 1, approver="api"))
    await store.aclose()
    reopened = await open_store("approvals", impl, db_path)
    try:
        assert await reopened.pending() == [prompt("apr_1")]
        assert [r.id for r in await reopened.expire_orphans(WALL + 9, ORPHAN_NOTE)] == ["apr_1"]
        got = await reopened.get("apr_2")
        assert got is not None and got.approver == "api"
    finally:
        await reopened.aclose()
