"""Function-call assembly by call_id."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from foreman.protocols.realtime import FunctionCallReady, Phase, RealtimeSession, SessionUpdate

RESP = "resp_1"


def configured() -> RealtimeSession:
    rt = RealtimeSession()
    rt.receive(json.dumps({"type": "session.created", "event_id": "e", "session": {"id": "s"}}))
    rt.send(SessionUpdate({"type": "realtime"}))
    rt.receive(json.dumps({"type": "session.updated", "event_id": "e", "session": {"id": "s"}}))
    rt.receive(ev("response.created", response={"id": RESP, "status": "in_progress"}))
    assert rt.phase is Phase.CONFIGURED
    return rt


def ev(type_: str, **fields: Any) -> str:
    return json.dumps({"type": type_, "event_id": "event_x", **fields})


def item(n: int, status: str, arguments: str | None = None, name: str = "tool") -> dict[str, Any]:
    it: dict[str, Any] = {
        "id": f"item_{n}",
        "type": "function_call",
        "status": status,
        "name": name,
        "call_id": f"call_{n}",
    }
    if arguments is not None:
        it["arguments"] = arguments
    return it


def added(n: int) -> str:
    return ev(
        "response.output_item.added",
        response_id=RESP,
        output_index=n,
        item=item(n, "in_progress", ""),
    )


def delta(n: int, piece: str) -> str:
    return ev(
        "response.function_call_arguments.delta",
        response_id=RESP,
        item_id=f"item_{n}",
        output_index=n,
        call_id=f"call_{n}",
        delta=piece,
    )


def args_done(n: int, arguments: str, name: str = "tool") -> str:
    return ev(
        "response.function_call_arguments.done",
        response_id=RESP,
        item_id=f"item_{n}",
        output_index=n,
        call_id=f"call_{n}",
        name=name,
        arguments=arguments,
    )


def item_done(n: int, arguments: str | None, status: str = "completed") -> str:
    return ev(
        "response.output_item.done",
        response_id=RESP,
        output_index=n,
        item=item(n, status, arguments),
    )


def response_done(items: list[dict[str, Any]], status: str = "completed") -> str:
    return ev("response.done", response={"id": RESP, "status": status, "output": items})


def calls_of(rt: RealtimeSession, frames: list[str]) -> list[FunctionCallReady]:
    out = []
    for f in frames:
        out += [x for x in rt.receive(f) if isinstance(x, FunctionCallReady)]
    return out


def test_deltas_then_done_emit_once_with_the_done_arguments() -> None:
    rt = configured()
    args = '{"to":"+15551234567","body":"On my way"}'
    frames = [added(1), *(delta(1, args[i : i + 7]) for i in range(0, len(args), 7))]
    assert calls_of(rt, frames) == []
    assert rt.pending_call_ids == ("call_1",)
    got = calls_of(rt, [args_done(1, args, "send_sms")])
    assert got == [FunctionCallReady("call_1", "send_sms", args, "item_1", RESP)]
    # The fallbacks that follow never report it again.
    assert calls_of(rt, [item_done(1, args), response_done([item(1, "completed", args)])]) == []
    assert rt.pending_call_ids == ()
    assert rt.counters["function_calls"] == 1


def test_output_item_done_is_the_fallback_when_done_is_missed() -> None:
    rt = configured()
    got = calls_of(rt, [added(2), delta(2, '{"a"'), delta(2, ":1}"), item_done(2, '{"a":1}')])
    assert got == [FunctionCallReady("call_2", "tool", '{"a":1}', "item_2", RESP)]


def test_output_item_done_without_arguments_uses_the_deltas() -> None:
    rt = configured()
    got = calls_of(rt, [added(2), delta(2, '{"a"'), delta(2, ":1}"), item_done(2, None)])
    assert [c.arguments for c in got] == ['{"a":1}']


def test_response_done_is_the_last_fallback() -> None:
    rt = configured()
    got = calls_of(rt, [delta(3, "{}"), response_done([item(3, "completed", "{}")])])
    assert got == [FunctionCallReady("call_3", "tool", "{}", "item_3", RESP)]


def test_done_without_added_still_has_a_name() -> None:
    rt = configured()
    got = calls_of(rt, [delta(4, "{}"), args_done(4, "{}", "get_time")])
    assert got[0].name == "get_time"


def test_name_from_output_item_added_when_done_lacks_it() -> None:
    rt = configured()
    got = calls_of(rt, [added(5), args_done(5, "{}", name="")])
    assert got[0].name == "tool"


def test_cancelled_mid_call_is_never_reported() -> None:
    rt = configured()
    frames = [
        added(6),
        delta(6, '{"to":"+1'),
        item_done(6, '{"to":"+1', status="incomplete"),
        response_done([item(6, "incomplete", '{"to":"+1')], status="cancelled"),
    ]
    assert calls_of(rt, frames) == []
    assert rt.pending_call_ids == ()


def test_response_done_drops_pending_calls_of_that_response() -> None:
    rt = configured()
    assert calls_of(rt, [added(7), delta(7, '{"x"'), response_done([], status="failed")]) == []
    assert rt.pending_call_ids == ()
    # A late .done for a forgotten call is still reported once (the model finished it).
    assert len(calls_of(rt, [args_done(7, '{"x":1}')])) == 1


def test_duplicate_done_is_ignored() -> None:
    rt = configured()
    assert len(calls_of(rt, [args_done(8, "{}"), args_done(8, "{}"), item_done(8, "{}")])) == 1


def test_non_function_items_are_ignored() -> None:
    rt = configured()
    msg = {
        "id": "item_m",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [],
    }
    frames = [
        ev("response.output_item.added", response_id=RESP, output_index=0, item=msg),
        ev("response.output_item.done", response_id=RESP, output_index=0, item=msg),
        response_done([msg]),
    ]
    assert calls_of(rt, frames) == []


# --- property: any interleaving of several calls' deltas assembles every call once --------
ARGS = st.dictionaries(
    st.sampled_from(["city", "to", "body", "n"]), st.text(max_size=12) | st.integers(), max_size=3
).map(lambda d: json.dumps(d, ensure_ascii=False))
ENDINGS = st.sampled_from(["done", "item_done", "response_done", "done_then_item_done"])


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[str], list[str], list[tuple[int, str]]]:
    n_calls = draw(st.integers(1, 3))
    args = [draw(ARGS) for _ in range(n_calls)]
    endings = [draw(ENDINGS) for _ in range(n_calls)]
    # Split each call's arguments into 1..6 pieces at random cut points.
    queues: list[list[str]] = []
    for a in args:
        cuts = sorted(draw(st.lists(st.integers(0, len(a)), max_size=5)))
        bounds = [0, *cuts, len(a)]
        queues.append([a[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)])
    # A random merge that keeps each call's own order.
    order: list[tuple[int, str]] = []
    heads = [0] * n_calls
    while any(heads[i] < len(queues[i]) for i in range(n_calls)):
        live = [i for i in range(n_calls) if heads[i] < len(queues[i])]
        i = draw(st.sampled_from(live))
        order.append((i, queues[i][heads[i]]))
        heads[i] += 1
    return args, endings, order


@settings(max_examples=300, deadline=None)
@given(scenario(), st.booleans())
def test_any_interleaving_assembles_every_call_exactly_once(case: Any, announce: bool) -> None:
    args, endings, order = case
    rt = configured()
    frames = [added(i) for i in range(len(args))] if announce else []
    frames += [delta(i, piece) for i, piece in order]
    for i, ending in enumerate(endings):
        if ending in ("done", "done_then_item_done"):
            frames.append(args_done(i, args[i]))
        if ending in ("item_done", "done_then_item_done"):
            frames.append(item_done(i, args[i]))
    frames.append(response_done([item(i, "completed", a) for i, a in enumerate(args)]))
    got = calls_of(rt, frames)
    assert sorted(c.call_id for c in got) == [f"call_{i}" for i in range(len(args))]
    for c in got:
        i = int(c.call_id.split("_")[1])
        assert c.arguments == args[i]
        assert json.loads(c.arguments) == json.loads(args[i])
        assert (c.item_id, c.response_id, c.name) == (f"item_{i}", RESP, "tool")
    assert rt.pending_call_ids == ()


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_deltas_alone_reassemble_the_exact_text(case: Any) -> None:
    """With only deltas and an item_done without arguments, the deltas are the arguments."""
    args, _, order = case
    rt = configured()
    frames = [delta(i, piece) for i, piece in order]
    frames += [item_done(i, None) for i in range(len(args))]
    got = {c.call_id: c.arguments for c in calls_of(rt, frames)}
    assert got == {f"call_{i}": a for i, a in enumerate(args)}
