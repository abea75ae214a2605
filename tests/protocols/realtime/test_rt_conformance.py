"""Conformance with the official SDK models (the `openai` package's realtime types).

Every client event Foreman can produce must validate against `RealtimeClientEvent` with a
tagged union AND carry no extra fields at any level (`model_extra` empty), which is how beta
leakage (`modalities`, a top-level `voice`, ...) is caught: the SDK models allow extras.
Recorded server traces must validate against `RealtimeServerEvent`.
"""

from __future__ import annotations

import itertools
import typing
from typing import Annotated, Any

import pydantic
import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from rt_replay import TRACES, load_trace

from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K
from foreman.config import RealtimeConfig
from foreman.protocols.realtime import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    ConversationItemCreate,
    ConversationItemDelete,
    ConversationItemRetrieve,
    ConversationItemTruncate,
    InputAudioBufferAppend,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    OutputAudioBufferClear,
    Phase,
    RealtimeSession,
    ResponseCancel,
    ResponseCreate,
    SessionOptions,
    TurnDetection,
    assistant_text_item,
    build_session_update,
    encode_client_event,
    function_call_output_item,
    session_options_from_config,
    system_text_item,
    user_audio_item,
    user_text_item,
)
from foreman.protocols.realtime.client_events import ClientEvent
from foreman.protocols.realtime.wire_formats import format_to_wire

CLIENT = pydantic.TypeAdapter(Annotated[RealtimeClientEvent, pydantic.Field(discriminator="type")])
SERVER = pydantic.TypeAdapter(Annotated[RealtimeServerEvent, pydantic.Field(discriminator="type")])

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _union_types(union: Any) -> set[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}


def _extras(model: Any, where: str = "event") -> list[str]:
    """Every non-empty `model_extra` in a validated pydantic model tree."""
    found: list[str] = []
    if isinstance(model, pydantic.BaseModel):
        if model.model_extra:
            found.append(f"{where}: {sorted(model.model_extra)}")
        for name in type(model).model_fields:
            found += _extras(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list | tuple):
        for i, x in enumerate(model):
            found += _extras(x, f"{where}[{i}]")
    elif isinstance(model, dict):
        for k, v in model.items():
            found += _extras(v, f"{where}.{k}")
    return found


def assert_conforms(event: ClientEvent) -> None:
    wire = event.to_dict()
    model = CLIENT.validate_python(wire)
    assert model.type == event.type
    assert _extras(model) == [], wire
    # to_dict is exactly what goes on the wire.
    assert pydantic.TypeAdapter(dict).validate_json(encode_client_event(event)) == wire


def test_tables_cover_the_sdk_unions_exactly() -> None:
    assert set(SERVER_EVENT_TYPES) == _union_types(RealtimeServerEvent)
    assert set(CLIENT_EVENT_TYPES) == _union_types(RealtimeClientEvent)
    for name, cls in SERVER_EVENT_TYPES.items():
        assert cls.type == name
    for name, cls in CLIENT_EVENT_TYPES.items():
        assert cls.type == name


ITEMS = [
    user_text_item("hello"),
    system_text_item("The caller pressed 5."),
    assistant_text_item("Earlier I said hi."),
    user_audio_item("AAAA"),
    function_call_output_item("call_1", '{"ok":true}'),
    {"id": "item_own", **user_text_item("with an id")},
]

EVENTS: list[ClientEvent] = [
    InputAudioBufferAppend("UklGRg=="),
    InputAudioBufferAppend("UklGRg==", event_id="a-1"),
    InputAudioBufferCommit(),
    InputAudioBufferCommit(event_id="c-1"),
    InputAudioBufferClear(),
    OutputAudioBufferClear(),
    ConversationItemRetrieve("item_1"),
    ConversationItemTruncate("item_1", 0, 640),
    ConversationItemTruncate("item_1", 0, 0, event_id="t-1"),
    ConversationItemDelete("item_1"),
    ResponseCreate(),
    ResponseCreate({"instructions": "Say goodbye.", "output_modalities": ["text"]}),
    ResponseCreate(
        {
            "conversation": "none",
            "metadata": {"purpose": "classifier"},
            "input": [user_text_item("classify me")],
            "audio": {"output": {"voice": "cedar", "format": format_to_wire(PCMU_8K)}},
        }
    ),
    ResponseCancel(),
    ResponseCancel("resp_1", event_id="x-1"),
    *(ConversationItemCreate(item) for item in ITEMS),
    ConversationItemCreate(user_text_item("first"), previous_item_id="root"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_client_event_conforms(event: ClientEvent) -> None:
    assert_conforms(event)


def test_every_client_event_class_is_exercised() -> None:
    assert {type(e) for e in EVENTS} | {build_session_update(_opts()).__class__} == set(
        CLIENT_EVENT_TYPES.values()
    )


def _opts(**kw: Any) -> SessionOptions:
    base: dict[str, Any] = {
        "model": "gpt-realtime-2.1",
        "instructions": "Be brief.",
        "voice": "marin",
        "input_format": PCM16_24K,
        "output_format": PCM16_24K,
    }
    base.update(kw)
    return SessionOptions(**base)


FORMATS = [PCM16_24K, PCMU_8K, PCMA_8K]
TURNS = [
    TurnDetection(),
    TurnDetection(silence_duration_ms=350, idle_timeout_ms=8000, threshold=0.7),
    TurnDetection(type="semantic_vad", eagerness="high", interrupt_response=False),
    TurnDetection(type="none"),
]


@pytest.mark.parametrize(
    ("fmt_in", "fmt_out", "turn"),
    list(itertools.product(FORMATS, FORMATS, TURNS)),
    ids=lambda x: str(getattr(x, "type", x)),
)
def test_session_update_conforms_over_formats_and_turn_detection(
    fmt_in: Any, fmt_out: Any, turn: TurnDetection
) -> None:
    assert_conforms(
        build_session_update(_opts(input_format=fmt_in, output_format=fmt_out, turn_detection=turn))
    )


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"transcription_model": "gpt-live-transcribe"},
        {"transcription_model": "gpt-transcribe", "transcription_language": "de"},
        {"noise_reduction": "near_field"},
        {"noise_reduction": "far_field", "output_modalities": ("text",)},
        {"tools": (WEATHER,), "tool_choice": "required"},
        {
            "tools": (WEATHER, {**WEATHER, "name": "end_call", "risk": "low"}),
            "tool_choice": "end_call",
        },
        {"tools": ({"type": "function", "name": "ping"},), "tool_choice": "none"},
        {"voice": "voice_1234abcd"},
        {"instructions": ""},
    ],
    ids=str,
)
def test_session_update_conforms_over_options(kw: dict[str, Any]) -> None:
    assert_conforms(build_session_update(_opts(**kw)))


@pytest.mark.parametrize("fmt", ["pcm16", "g711_ulaw", "g711_alaw"])
@pytest.mark.parametrize("td", ["server_vad", "semantic_vad", "none"])
def test_session_update_from_config_conforms(fmt: str, td: str) -> None:
    rt = RealtimeConfig(audio_out_format=fmt, turn_detection=TurnDetection(type=td))
    assert_conforms(build_session_update(session_options_from_config(rt)))
    assert_conforms(
        build_session_update(
            session_options_from_config(
                rt,
                transcription_model="",
                tools=[WEATHER],
                voice="cedar",
                model="gpt-realtime-2.1-mini",
            )
        )
    )


def test_events_sent_by_the_session_conform() -> None:
    """The session adds event ids; the result must still be exactly GA."""
    import json

    rt = RealtimeSession()
    rt.receive(
        json.dumps(
            {
                "type": "session.created",
                "event_id": "e1",
                "session": {"type": "realtime", "id": "sess_1"},
            }
        )
    )
    texts = [rt.send(build_session_update(_opts()))]
    assert rt.phase is Phase.CONFIGURING
    texts += [rt.send(e) for e in EVENTS if not isinstance(e, InputAudioBufferAppend)]
    texts.append(rt.send_audio("UklGRg=="))
    for text in texts:
        model = CLIENT.validate_json(text)
        assert _extras(model) == [], text


@pytest.mark.parametrize("name", TRACES)
def test_recorded_traces_validate_against_the_sdk(name: str) -> None:
    for direction, event in load_trace(name):
        if direction == "<":
            SERVER.validate_python(event)
        else:
            model = CLIENT.validate_python(event)
            assert _extras(model) == [], event


def test_beta_leakage_is_detected_by_the_walk() -> None:
    """The check itself works: a beta field inside a GA session.update is an extra."""
    wire = build_session_update(_opts()).to_dict()
    wire["session"]["modalities"] = ["text", "audio"]
    wire["session"]["audio"]["output"]["speed_beta"] = 1
    found = _extras(CLIENT.validate_python(wire))
    assert any("modalities" in f for f in found)
    assert any("speed_beta" in f for f in found)
