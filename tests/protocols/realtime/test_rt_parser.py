"""Parser tolerance and the encoders."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rt_replay import TRACES, load_trace

from foreman.exceptions import RemoteProtocolError
from foreman.protocols.realtime import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    ConversationItemCreate,
    InputAudioBufferAppend,
    KnownServerEvent,
    ResponseCreate,
    UnknownEvent,
    encode_audio_append,
    encode_client_event,
    parse_client_event,
    parse_server_event,
    user_text_item,
)
from foreman.protocols.realtime import server_events as se
from foreman.testing.speech import synthesize

DELTA = {
    "type": "response.output_audio.delta",
    "event_id": "event_1",
    "response_id": "resp_1",
    "item_id": "item_1",
    "output_index": 0,
    "content_index": 0,
    "delta": "AAAA",
}


def test_text_bytes_bytearray_and_dict_inputs_agree() -> None:
    text = json.dumps(DELTA)
    forms: list[Any] = [text, text.encode(), bytearray(text.encode()), dict(DELTA)]
    parsed = [parse_server_event(f) for f in forms]
    assert all(p == parsed[0] for p in parsed)
    ev = parsed[0]
    assert isinstance(ev, se.ResponseOutputAudioDelta)
    assert (ev.event_id, ev.response_id, ev.item_id, ev.delta) == (
        "event_1",
        "resp_1",
        "item_1",
        "AAAA",
    )
    assert ev.type == "response.output_audio.delta"
    assert ev.raw == DELTA


def test_every_recorded_event_gets_its_class() -> None:
    for name in TRACES:
        for direction, event in load_trace(name):
            if direction == "<":
                ev = parse_server_event(event)
                assert type(ev) is SERVER_EVENT_TYPES[event["type"]]
                assert ev.raw is event


def test_unknown_type_becomes_unknown_event() -> None:
    raw = {"type": "response.brand_new_thing", "event_id": "e", "stuff": [1, 2]}
    ev = parse_server_event(json.dumps(raw))
    assert isinstance(ev, UnknownEvent)
    assert ev.type == "response.brand_new_thing"
    assert ev.raw == raw


@pytest.mark.parametrize(
    "beta", ["response.audio.delta", "response.text.delta", "transcription_session.updated"]
)
def test_beta_only_names_are_unknown_not_errors(beta: str) -> None:
    assert isinstance(parse_server_event({"type": beta, "delta": "x"}), UnknownEvent)


def test_extra_fields_are_kept_in_raw() -> None:
    raw = {**DELTA, "obfuscation": "zz", "new_field": {"a": 1}}
    ev = parse_server_event(raw)
    assert isinstance(ev, se.ResponseOutputAudioDelta)
    assert ev.raw["obfuscation"] == "zz"


def test_beta_alias_conversation_item_created_is_typed() -> None:
    item = {"id": "item_1", "type": "message", "role": "user", "content": []}
    for name in ("conversation.item.created", "conversation.item.added", "conversation.item.done"):
        ev = parse_server_event({"type": name, "event_id": "e", "item": item})
        assert isinstance(ev, KnownServerEvent)
        assert ev.item == item  # type: ignore[attr-defined]
        assert se.item_id_of(ev.item) == "item_1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("part_type", ["audio", "output_audio"])
def test_both_spellings_of_audio_parts(part_type: str) -> None:
    ev = parse_server_event(
        {
            "type": "response.content_part.added",
            "event_id": "e",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": part_type, "transcript": ""},
        }
    )
    assert isinstance(ev, se.ResponseContentPartAdded)
    assert se.is_audio_part(ev.part["type"])
    assert not se.is_audio_part("text") and not se.is_audio_part("output_text")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ("[1, 2]", "JSON list"),
        ("42", "JSON int"),
        ('"text"', "JSON str"),
        ("null", "JSON NoneType"),
        ("{}", "no string 'type'"),
        ('{"type": 5}', "no string 'type'"),
        ('{"type": null}', "no string 'type'"),
        ("", "not valid JSON"),
    ],
)
def test_garbage_is_a_remote_protocol_error(data: str | bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        parse_server_event(data)


def test_known_event_missing_a_needed_field_is_a_remote_protocol_error() -> None:
    bad = {k: v for k, v in DELTA.items() if k != "item_id"}
    with pytest.raises(RemoteProtocolError, match=r"response.output_audio.delta: missing.*item_id"):
        parse_server_event(bad)
    with pytest.raises(RemoteProtocolError, match="'delta' must be a string, got int"):
        parse_server_event({**DELTA, "delta": 5})
    with pytest.raises(RemoteProtocolError, match="must be an integer, got bool"):
        parse_server_event({**DELTA, "content_index": True})
    with pytest.raises(RemoteProtocolError, match="missing required field 'error'"):
        parse_server_event({"type": "error", "event_id": "e"})


def test_optional_fields_take_defaults_and_null() -> None:
    ev = parse_server_event(
        {
            "type": "response.output_audio.delta",
            "response_id": "r",
            "item_id": "i",
            "delta": "",
            "content_index": None,
        }
    )
    assert isinstance(ev, se.ResponseOutputAudioDelta)
    assert (ev.event_id, ev.output_index, ev.content_index) == ("", 0, 0)
    err = parse_server_event(
        {
            "type": "error",
            "event_id": "e",
            "error": {"type": "server_error", "code": None, "message": "boom"},
        }
    )
    assert isinstance(err, se.ErrorEvent)
    assert (err.error_type, err.code, err.message, err.param, err.error_event_id) == (
        "server_error",
        None,
        "boom",
        None,
        None,
    )
    dtmf = parse_server_event(
        {"type": "input_audio_buffer.dtmf_event_received", "event": "5", "received_at": 1795000000}
    )
    assert isinstance(dtmf, se.InputAudioBufferDtmfEventReceived)
    assert (dtmf.event, dtmf.event_id) == ("5", "")
    seg = parse_server_event(
        {
            "type": "conversation.item.input_audio_transcription.segment",
            "event_id": "e",
            "id": "seg_1",
            "item_id": "i",
            "content_index": 0,
            "text": "hi",
            "speaker": "A",
            "start": 0,
            "end": 1.5,
        }
    )
    assert isinstance(seg, se.InputAudioTranscriptionSegment)
    assert (seg.segment_id, seg.start, seg.end) == ("seg_1", 0.0, 1.5)
    assert isinstance(seg.start, float)


def test_response_created_exposes_id_and_status() -> None:
    ev = parse_server_event(
        {
            "type": "response.created",
            "event_id": "e",
            "response": {"id": "resp_9", "status": "in_progress"},
        }
    )
    assert isinstance(ev, se.ResponseCreated)
    assert (ev.response_id, ev.status) == ("resp_9", "in_progress")


# --- property tests ------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
TYPES = st.sampled_from([*SERVER_EVENT_TYPES, "x.unknown", ""])
FIELDS = st.sampled_from(
    [
        "event_id",
        "response_id",
        "item_id",
        "output_index",
        "content_index",
        "delta",
        "call_id",
        "name",
        "arguments",
        "item",
        "response",
        "session",
        "error",
        "audio_start_ms",
        "audio_end_ms",
        "transcript",
        "part",
        "rate_limits",
        "event",
        "id",
        "text",
    ]
)


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_arbitrary_json_only_ever_raises_remote_protocol_error(value: Any) -> None:
    try:
        ev = parse_server_event(json.dumps(value))
    except RemoteProtocolError:
        return
    assert isinstance(ev, KnownServerEvent | UnknownEvent)


@settings(max_examples=300, deadline=None)
@given(TYPES, st.dictionaries(FIELDS, JSON, max_size=8))
def test_event_shaped_json_only_ever_raises_remote_protocol_error(
    kind: str, fields: dict[str, Any]
) -> None:
    data = {"type": kind, **fields}
    try:
        ev = parse_server_event(json.dumps(data))
    except RemoteProtocolError as exc:
        assert str(exc)  # a one-line reason
        return
    assert ev.type == kind
    assert ev.raw == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_ever_raise_remote_protocol_error(data: bytes) -> None:
    try:
        ev = parse_server_event(data)
    except RemoteProtocolError:
        return
    assert isinstance(ev, KnownServerEvent | UnknownEvent)


# --- encoders ------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_encode_audio_append_matches_the_generic_encoder(data: bytes) -> None:
    b64 = base64.b64encode(data).decode()
    fast = encode_audio_append(b64)
    assert json.loads(fast) == json.loads(encode_client_event(InputAudioBufferAppend(b64)))
    assert json.loads(fast) == {"type": "input_audio_buffer.append", "audio": b64}


def test_encode_audio_append_with_real_speech() -> None:
    pcm = synthesize("testing one two three", 24000)[:960]  # one 20 ms frame
    b64 = base64.b64encode(pcm).decode()
    assert json.loads(encode_audio_append(b64))["audio"] == b64


@pytest.mark.parametrize("bad", ['AA"}', "AA\\u0000", "AA\n", "AAé", "A\x00"])
def test_encode_audio_append_refuses_text_that_needs_escaping(bad: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        encode_audio_append(bad)


def test_encode_client_event_is_compact_and_omits_none() -> None:
    text = encode_client_event(ResponseCreate())
    assert text == '{"type":"response.create"}'
    text = encode_client_event(ConversationItemCreate(user_text_item("héllo"), event_id="x"))
    assert " " not in text.replace("héllo", "")
    assert json.loads(text) == {
        "type": "conversation.item.create",
        "event_id": "x",
        "item": user_text_item("héllo"),
    }


def test_parse_client_event_round_trips_every_class() -> None:
    for name, cls in CLIENT_EVENT_TYPES.items():
        required = {
            "session.update": {"session": {"type": "realtime"}},
            "input_audio_buffer.append": {"audio": "AAAA"},
            "conversation.item.create": {"item": user_text_item("x")},
            "conversation.item.retrieve": {"item_id": "i"},
            "conversation.item.delete": {"item_id": "i"},
            "conversation.item.truncate": {"item_id": "i", "content_index": 0, "audio_end_ms": 5},
        }.get(name, {})
        event = cls(**required)
        assert parse_client_event(encode_client_event(event)) == event


@pytest.mark.parametrize(
    "data",
    [
        '{"type":"transcription_session.update","session":{}}',
        '{"type":"input_audio_buffer.append"}',
        '{"type":"input_audio_buffer.append","audio":"AA","modalities":["text"]}',
        "[]",
    ],
)
def test_parse_client_event_is_strict(data: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_client_event(data)


_BY_KIND = {
    "a string": st.text(max_size=6),
    "an integer": st.integers(-(2**40), 2**40),
    "a number": st.floats(allow_nan=False, allow_infinity=False),
    "a boolean": st.booleans(),
    "an object": st.dictionaries(st.text(max_size=4), JSON, max_size=3),
    "an array": st.lists(JSON, max_size=3),
}


@st.composite
def _valid_event(draw: st.DrawFn) -> tuple[type[KnownServerEvent], dict[str, Any]]:
    name = draw(st.sampled_from(sorted(SERVER_EVENT_TYPES)))
    cls = SERVER_EVENT_TYPES[name]
    data: dict[str, Any] = {"type": name, "event_id": draw(st.text(max_size=5))}
    for spec in cls.spec:
        if not spec.required and not draw(st.booleans()):
            parent = data.get(spec.path[0]) if len(spec.path) > 1 else data
            if isinstance(parent, dict):
                parent.pop(spec.path[-1], None)  # a random object may hold that key
            continue
        value = draw(st.none() if spec.nullable and draw(st.booleans()) else _BY_KIND[spec.kind])
        node = data
        for key in spec.path[:-1]:
            node = node.setdefault(key, {})
        node[spec.path[-1]] = value
    extras = draw(
        st.dictionaries(st.sampled_from(["obfuscation", "zz_new", "x"]), JSON, max_size=2)
    )
    return cls, {**extras, **data}


@settings(max_examples=500, deadline=None)
@given(_valid_event())
def test_well_typed_events_always_parse_with_their_values(case: Any) -> None:
    cls, data = case
    ev = parse_server_event(json.dumps(data))
    assert type(ev) is cls
    for spec in cls.spec:
        node: Any = data
        for key in spec.path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            assert getattr(ev, spec.name) == node


def test_encode_audio_append_limits_one_append_to_15_mib() -> None:
    limit = base64.b64encode(bytes(15 * 1024 * 1024)).decode()
    assert encode_audio_append(limit).endswith('"}')
    with pytest.raises(ValueError, match="15 MiB"):
        encode_audio_append(limit + "AAAA")


@pytest.mark.parametrize("frame", ["[" * 5000, '{"type": "x", "a": ' + "[" * 5000, b"{" * 5000])
def test_a_frame_nested_too_deeply_is_a_protocol_error_not_a_crash(frame: str | bytes) -> None:
    # json raises RecursionError for these: one frame from the server must not end a call.
    with pytest.raises(RemoteProtocolError, match=r"nested too deeply|not valid JSON"):
        parse_server_event(frame)
