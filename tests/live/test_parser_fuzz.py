"""Whatever the server sends, the Live client answers with records or one
`RemoteProtocolError`; the delegation bookkeeping never asks a call twice and always ends
owing nothing once every call is answered and every response finished."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from foreman.audio.formats import PCMU_8K
from foreman.exceptions import RemoteProtocolError
from foreman.protocols.live.client import LiveClient
from foreman.protocols.live.delegations import Delegations, FunctionCallRequested
from foreman.protocols.live.session_config import LiveSessionOptions, build_session_config

TYPES = [
    "session.started",
    "session.updated",
    "session.output_audio.delta",
    "session.input_transcript.delta",
    "session.output_transcript.delta",
    "session.delegation.created",
    "response.event",
    "session.thinking.appended",
    "session.usage.updated",
    "session.closed",
    "error",
    "info",
    "something.new",
]
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
KEYS = [
    "delta",
    "start_ms",
    "end_ms",
    "session",
    "delegation",
    "offset_ms",
    "event",
    "delegation_id",
    "usage",
    "reason",
    "error",
    "message",
    "code",
]
events = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | st.text(max_size=10)},
    optional={key: values for key in KEYS},
)
frames = events.map(json.dumps) | st.text(max_size=40) | st.binary(max_size=20)


def new_client() -> LiveClient:
    opts = LiveSessionOptions("gpt-live-1", "", PCMU_8K, "marin", "gpt-6-luna")
    client = LiveClient(build_session_config(opts))
    client.start()
    return client


@given(st.lists(frames, max_size=30))
@example(['{"type": "session.thinking.appended", "start_ms": Infinity}'])
@example(['{"type": "session.output_audio.delta", "delta": "", "start_ms": NaN}'])
@settings(max_examples=300)
def test_any_frames_give_records_or_one_protocol_error(batch: list[Any]) -> None:
    client = new_client()
    for frame in batch:
        try:
            out = client.receive(frame)
        except RemoteProtocolError as exc:
            assert "\n" not in str(exc)
        else:
            assert out  # the parsed event comes first, always


calls = st.sampled_from(["call_a", "call_b", "call_c"])
responses = st.sampled_from(["resp_1", "resp_2"])
steps = st.one_of(
    st.tuples(st.just("created"), st.sampled_from(["d1", "d2"])),
    st.tuples(st.just("call"), st.sampled_from(["d1", "d2", None]), calls),
    st.tuples(st.just("start"), st.sampled_from(["d1", "d2", None]), responses),
    st.tuples(st.just("finish"), st.sampled_from(["d1", "d2", None]), responses),
)


@given(st.lists(steps, max_size=25))
def test_calls_are_asked_once_and_all_answered_means_nothing_owed(script: list[Any]) -> None:
    book = Delegations()
    asked: list[str] = []
    opened: set[str] = set()
    for step in script:
        if step[0] == "created":
            book.created(step[1], "responses")
            book.envelope(step[1], {"type": "response.created", "response": {"id": "r_" + step[1]}})
            book.envelope(
                step[1], {"type": "response.completed", "response": {"id": "r_" + step[1]}}
            )
        elif step[0] == "call":
            item = {"type": "function_call", "call_id": step[2], "name": "t", "arguments": "{}"}
            out = book.envelope(step[1], {"type": "response.output_item.done", "item": item})
            asked += [n.call_id for n in out if isinstance(n, FunctionCallRequested)]
        elif step[0] == "start":
            opened.add(step[2])
            book.envelope(step[1], {"type": "response.created", "response": {"id": step[2]}})
        else:
            opened.discard(step[2])
            book.envelope(step[1], {"type": "response.completed", "response": {"id": step[2]}})
    assert len(asked) == len(set(asked))
    for call_id in asked:
        book.answer(call_id, "ok", continue_=False)
    for response_id in list(opened):
        book.envelope(None, {"type": "response.completed", "response": {"id": response_id}})
    assert not book.busy and book.pending_calls == frozenset()
