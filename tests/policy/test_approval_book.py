"""The pure approval state machine."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foreman.policy import (
    AlreadyAnswered,
    ApprovalBook,
    ApprovalState,
    CallContext,
    Channel,
    Role,
    ToolCall,
    UnknownApproval,
)

CALL = ToolCall("c1", "send_sms", {"to": "+1555", "body": "x"}, "high")


def ctx(session: str = "s1") -> CallContext:
    return CallContext(session, Channel.PHONE, Role.OWNER)


def book() -> ApprovalBook:
    ids = itertools.count(1)
    return ApprovalBook(id_factory=lambda: f"a{next(ids)}")


def test_approve_then_second_answer_conflicts() -> None:
    b = book()
    a = b.open(call=CALL, ctx=ctx(), now=10.0, timeout_s=120)
    assert (a.state, a.expires_at) == (ApprovalState.PENDING, 130.0)
    assert b.pending() == [a]
    done = b.answer(a.id, True, approver="api", note="ok", now=20.0)
    assert (done.state, done.approver, done.note, done.answered_at) == (
        ApprovalState.APPROVED,
        "api",
        "ok",
        20.0,
    )
    assert b.pending() == []
    with pytest.raises(AlreadyAnswered) as err:
        b.answer(a.id, False, approver="api", note=None, now=21.0)
    assert err.value.approval.state is ApprovalState.APPROVED
    assert b.get(a.id) == done


def test_unknown_id() -> None:
    with pytest.raises(UnknownApproval):
        book().answer("nope", True, approver="x", note=None, now=0)
    with pytest.raises(KeyError):
        book().get("nope")


def test_answer_at_deadline_is_expired() -> None:
    b = book()
    a = b.open(call=CALL, ctx=ctx(), now=0.0, timeout_s=5)
    with pytest.raises(AlreadyAnswered) as err:
        b.answer(a.id, True, approver="api", note=None, now=5.0)
    assert err.value.approval.state is ApprovalState.EXPIRED


def test_expire_due_and_cancel_session() -> None:
    b = book()
    a1 = b.open(call=CALL, ctx=ctx("s1"), now=0.0, timeout_s=5)
    a2 = b.open(call=CALL, ctx=ctx("s1"), now=0.0, timeout_s=50)
    a3 = b.open(call=CALL, ctx=ctx("s2"), now=0.0, timeout_s=50)
    assert b.next_deadline() == 5.0
    assert b.expire_due(4.9) == []
    assert [a.id for a in b.expire_due(5.0)] == [a1.id]
    cancelled = b.cancel_session("s1", now=6.0)
    assert [(a.id, a.state) for a in cancelled] == [(a2.id, ApprovalState.CANCELLED)]
    assert [a.id for a in b.pending()] == [a3.id]
    with pytest.raises(AlreadyAnswered):
        b.answer(a2.id, True, approver="api", note=None, now=7.0)


def test_finished_are_bounded() -> None:
    b = ApprovalBook(keep_finished=2)
    ids = [b.open(call=CALL, ctx=ctx(), now=0, timeout_s=1).id for _ in range(3)]
    b.expire_due(1)
    with pytest.raises(UnknownApproval):
        b.get(ids[0])
    assert b.get(ids[2]).state is ApprovalState.EXPIRED
    assert len(set(ids)) == 3


def test_bad_timeout() -> None:
    with pytest.raises(ValueError):
        book().open(call=CALL, ctx=ctx(), now=0, timeout_s=0)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["open", "approve", "deny", "expire", "cancel_s1", "cancel_s2", "tick"]),
        st.integers(0, 5),
        st.floats(0, 50),
    ),
    max_size=40,
)


@given(OPS)
def test_final_states_never_change(ops: list[tuple[str, int, float]]) -> None:
    """Over any sequence of operations: once final, an approval never changes; an answer
    succeeds only on a pending approval before its deadline; time never runs backwards."""
    b = book()
    now = 0.0
    seen: dict[str, ApprovalState] = {}
    ids: list[str] = []
    for op, index, dt in ops:
        now += dt
        target = ids[index % len(ids)] if ids else "missing"
        if op == "open":
            session = "s1" if index % 2 else "s2"
            ids.append(b.open(call=CALL, ctx=ctx(session), now=now, timeout_s=30).id)
        elif op in ("approve", "deny"):
            before = b.get(target) if ids else None
            try:
                done = b.answer(target, op == "approve", approver="t", note=None, now=now)
            except UnknownApproval:
                assert not ids
            except AlreadyAnswered:
                assert before is not None
                assert not before.pending or now >= before.expires_at
            else:
                assert before is not None and before.pending and now < before.expires_at
                assert done.state is (
                    ApprovalState.APPROVED if op == "approve" else ApprovalState.DENIED
                )
        elif op in {"expire", "tick"}:
            for a in b.expire_due(now):
                assert a.state is ApprovalState.EXPIRED and now >= a.expires_at
        else:
            for a in b.cancel_session(op[-2:], now):
                assert a.state is ApprovalState.CANCELLED and a.ctx.session_id == op[-2:]
        for approval_id in ids:
            current = b.get(approval_id)
            if approval_id in seen and seen[approval_id] is not ApprovalState.PENDING:
                assert current.state is seen[approval_id]
            seen[approval_id] = current.state
            assert current.pending == (current in b.pending())
