"""Property tests: whatever a client sends, the mock answers with valid GA events, never
crashes, accepts every valid `session.update`, and a rejected one changes nothing (sessions are
driven without sockets)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from foreman.testing.mock_realtime import MockRealtimeServer, MockSession
from foreman.testing.mock_realtime.errors import CLIENT_EVENT_TYPES
from foreman.testing.mock_realtime.schema import VOICES
from foreman.testing.speech import synthesize

from .conftest import SERVER_EVENT

KEYS = [
    "type", "model", "output_modalities", "instructions", "audio", "input", "output", "format",
    "rate", "turn_detection", "threshold", "silence_duration_ms", "prefix_padding_ms",
    "create_response", "interrupt_response", "transcription", "noise_reduction", "voice",
    "speed", "tools", "tool_choice", "max_output_tokens", "truncation", "tracing", "include",
    "modalities", "input_audio_format", "bogus", "name", "item", "item_id", "content",
    "role", "text", "audio_end_ms", "content_index", "response", "conversation", "event_id",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 30000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["realtime", "transcription", "audio", "text", "auto", "alloy", "audio/pcm"]),
    st.sampled_from(["audio/pcmu", "server_vad", "semantic_vad", "inf", "message", "user"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)

# --- valid sessions, to be mutated -----------------------------------------------------------
FORMATS = st.sampled_from(
    [
        {"type": "audio/pcm", "rate": 24000},
        {"type": "audio/pcm"},
        {"type": "audio/pcmu"},
        {"type": "audio/pcma"},
    ]
)
SERVER_VAD = st.fixed_dictionaries(
    {"type": st.just("server_vad")},
    optional={
        "threshold": st.floats(0, 1),
        "prefix_padding_ms": st.integers(0, 1000),
        "silence_duration_ms": st.integers(0, 2000),
        "idle_timeout_ms": st.none() | st.integers(5000, 30000),
        "create_response": st.booleans(),
        "interrupt_response": st.booleans(),
    },
)
SEMANTIC_VAD = st.fixed_dictionaries(
    {"type": st.just("semantic_vad")},
    optional={
        "eagerness": st.sampled_from(["low", "medium", "high", "auto"]),
        "create_response": st.booleans(),
        "interrupt_response": st.booleans(),
    },
)
AUDIO_IN = st.fixed_dictionaries(
    {},
    optional={
        "format": FORMATS,
        "turn_detection": st.none() | SERVER_VAD | SEMANTIC_VAD,
        "transcription": st.none()
        | st.fixed_dictionaries(
            {"model": st.sampled_from(["gpt-live-transcribe", "whisper-1"])},
            optional={"language": st.sampled_from(["en", "fr"]), "prompt": st.text(max_size=8)},
        ),
        "noise_reduction": st.none()
        | st.fixed_dictionaries({"type": st.sampled_from(["near_field", "far_field"])}),
    },
)
AUDIO_OUT = st.fixed_dictionaries(
    {},
    optional={
        "format": FORMATS,
        "voice": st.sampled_from(VOICES)
        | st.builds(lambda i: {"id": i}, st.text(min_size=1, max_size=8)),
        "speed": st.floats(0.25, 1.5),
    },
)
TOOL = st.fixed_dictionaries(
    {"type": st.just("function"), "name": st.text(min_size=1, max_size=10)},
    optional={"description": st.text(max_size=10), "parameters": st.just({"type": "object"})},
)
VALID = st.fixed_dictionaries(
    {"type": st.just("realtime")},
    optional={
        "model": st.just("gpt-realtime-2.1"),
        "output_modalities": st.sampled_from([["audio"], ["text"]]),
        "instructions": st.text(max_size=30),
        "audio": st.fixed_dictionaries({}, optional={"input": AUDIO_IN, "output": AUDIO_OUT}),
        "tools": st.lists(TOOL, max_size=2),
        "tool_choice": st.sampled_from(["auto", "none", "required"])
        | st.builds(lambda n: {"type": "function", "name": n}, st.text(min_size=1, max_size=5)),
        "max_output_tokens": st.integers(1, 4096) | st.just("inf"),
        "truncation": st.sampled_from(["auto", "disabled"]),
        "tracing": st.none() | st.just("auto"),
        "include": st.none() | st.just(["item.input_audio_transcription.logprobs"]),
    },
)

ERROR_CODES = {
    "missing_required_parameter", "unknown_parameter", "invalid_value", "invalid_type",
    "integer_below_min_value", "integer_above_max_value", "decimal_below_min_value",
    "decimal_above_max_value",
}  # fmt: skip


def dict_nodes(obj: Any) -> list[dict[str, Any]]:
    found = [obj] if isinstance(obj, dict) else []
    children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
    for child in children:
        found += dict_nodes(child)
    return found


def offline_session() -> tuple[MockSession, list[str]]:
    wire: list[str] = []

    async def send_raw(text: str) -> None:
        wire.append(text)

    server = MockRealtimeServer()
    session = MockSession(server, "gpt-realtime-2.1", send_raw, lambda: None, server.faults)
    return session, wire


def check_wire(session: MockSession, wire: list[str]) -> None:
    assert not session.internal_errors, session.internal_errors
    for raw in wire:
        SERVER_EVENT.validate_python(json.loads(raw))


SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(update=VALID, data=st.data())
async def test_valid_updates_apply_and_broken_ones_change_nothing(
    update: dict[str, Any], data: st.DataObject
) -> None:
    update = copy.deepcopy(update)  # st.just() values are shared between examples
    mutated = data.draw(st.booleans(), label="mutate")
    if mutated:
        node = data.draw(st.sampled_from(dict_nodes(update)), label="node")
        if node is update and data.draw(st.booleans(), label="drop type"):
            del update["type"]
        else:
            node[data.draw(st.sampled_from(KEYS), label="key")] = data.draw(VALUES, label="value")
    session, wire = offline_session()
    before = copy.deepcopy(session.config)
    await session.handle_text(json.dumps({"type": "session.update", "session": update}))
    check_wire(session, wire)  # session.updated carries the merged config: the SDK checks it
    assert len(wire) == 1
    reply = json.loads(wire[0])
    event(f"{'mutated' if mutated else 'valid'}: {reply['type']}")
    if not mutated:
        assert reply["type"] == "session.updated", reply
    if reply["type"] == "error":
        assert reply["error"]["code"] in ERROR_CODES
        assert session.config == before  # nothing applied
    else:
        assert reply["session"] == session.config
        assert session.config["id"] == before["id"]
        if "instructions" in update:
            assert session.config["instructions"] == update["instructions"]
    await session.shutdown()


TRUNCATE = {
    "type": "conversation.item.truncate",
    "item_id": "i",
    "content_index": 0,
    "audio_end_ms": 5,
}
USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
SPEECH = base64.b64encode(synthesize("hello there", 24000)).decode()
CANNED = st.sampled_from(
    [
        {"type": "response.create"},
        {"type": "response.cancel"},
        {"type": "input_audio_buffer.append", "audio": SPEECH},
        {"type": "input_audio_buffer.commit"},
        {"type": "input_audio_buffer.clear"},
        {"type": "conversation.item.create", "item": USER_HI},
        TRUNCATE,
        {"type": "conversation.item.delete", "item_id": "x"},
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
    ]
)  # fmt: skip
RANDOM = st.builds(
    lambda kind, body: {**body, "type": kind},
    st.sampled_from([*CLIENT_EVENT_TYPES, "nope", "transcription_session.update"]),
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3),
)


@SETTINGS
@given(events=st.lists(CANNED | RANDOM, min_size=1, max_size=8))
async def test_any_client_events_get_valid_answers(events: list[dict[str, Any]]) -> None:
    session, wire = offline_session()
    for client_event in events:
        await session.handle_text(json.dumps(client_event))
    await session.shutdown()
    check_wire(session, wire)
    for raw in wire:
        event(json.loads(raw)["type"])
