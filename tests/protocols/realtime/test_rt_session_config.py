"""session.update builder and item builders."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K, AudioFormat, Encoding
from foreman.config import RealtimeConfig, settings_from_dict
from foreman.exceptions import AudioFormatError, ConfigError
from foreman.protocols.realtime import (
    SessionOptions,
    SessionUpdate,
    TurnDetection,
    assistant_text_item,
    build_session_update,
    function_call_output_item,
    session_options_from_config,
    system_text_item,
    user_text_item,
)


def opts(**kw: Any) -> SessionOptions:
    base: dict[str, Any] = {
        "model": "gpt-realtime-2.1",
        "instructions": "Be brief.",
        "voice": "marin",
        "input_format": PCM16_24K,
        "output_format": PCM16_24K,
    }
    return SessionOptions(**{**base, **kw})


def session(o: SessionOptions) -> dict[str, Any]:
    update = build_session_update(o)
    assert isinstance(update, SessionUpdate)
    return update.session


def test_full_ga_session_update_field_for_field() -> None:
    """A complete GA session, field for field (speed aside: Foreman leaves it default)."""
    s = session(
        opts(
            instructions="You are a concise voice assistant.",
            noise_reduction="near_field",
            transcription_model="gpt-live-transcribe",
            transcription_language="en",
        )
    )
    assert s == {
        "type": "realtime",
        "model": "gpt-realtime-2.1",
        "output_modalities": ["audio"],
        "instructions": "You are a concise voice assistant.",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": "gpt-live-transcribe", "language": "en"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
        },
        "tools": [],
        "tool_choice": "auto",
    }


def test_default_event_id_correlates_errors() -> None:
    assert build_session_update(opts()).event_id == "cfg-1"
    assert build_session_update(opts(), event_id="cfg-7").event_id == "cfg-7"
    assert "event_id" not in build_session_update(opts(), event_id=None).to_dict()


@pytest.mark.parametrize(
    ("fmt", "wire"),
    [
        (PCM16_24K, {"type": "audio/pcm", "rate": 24000}),
        (PCMU_8K, {"type": "audio/pcmu"}),
        (PCMA_8K, {"type": "audio/pcma"}),
    ],
)
def test_formats_in_and_out(fmt: AudioFormat, wire: dict[str, Any]) -> None:
    s = session(opts(input_format=fmt, output_format=PCM16_24K))
    assert s["audio"]["input"]["format"] == wire
    s = session(opts(input_format=PCM16_24K, output_format=fmt))
    assert s["audio"]["output"]["format"] == wire


def test_pcm_at_another_rate_is_refused_early() -> None:
    with pytest.raises(AudioFormatError, match="24000"):
        opts(input_format=AudioFormat(Encoding.PCM16, 16000))


def test_server_vad_sends_silence_explicitly_and_idle_timeout_only_when_set() -> None:
    td = session(opts())["audio"]["input"]["turn_detection"]
    assert td["silence_duration_ms"] == 500 and "idle_timeout_ms" not in td
    td = session(opts(turn_detection=TurnDetection(silence_duration_ms=220, idle_timeout_ms=6000)))[
        "audio"
    ]["input"]["turn_detection"]
    assert (td["silence_duration_ms"], td["idle_timeout_ms"]) == (220, 6000)


def test_semantic_vad_takes_only_its_own_fields() -> None:
    td = session(
        opts(
            turn_detection=TurnDetection(
                type="semantic_vad", eagerness="low", silence_duration_ms=999, idle_timeout_ms=5
            )
        )
    )["audio"]["input"]["turn_detection"]
    assert td == {
        "type": "semantic_vad",
        "eagerness": "low",
        "create_response": True,
        "interrupt_response": True,
    }


def test_no_turn_detection_is_null() -> None:
    s = session(opts(turn_detection=TurnDetection(type="none")))
    assert "turn_detection" in s["audio"]["input"]
    assert s["audio"]["input"]["turn_detection"] is None


def test_transcription_and_noise_reduction_off_are_explicit_nulls() -> None:
    s = session(opts())
    assert s["audio"]["input"]["transcription"] is None
    assert s["audio"]["input"]["noise_reduction"] is None


def test_text_output_modality() -> None:
    assert session(opts(output_modalities=("text",)))["output_modalities"] == ["text"]


@pytest.mark.parametrize("bad", [("audio", "text"), (), ("video",)])
def test_both_modalities_are_refused(bad: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="output_modalities"):
        opts(output_modalities=bad)


def test_tools_are_normalised_to_ga_function_tools() -> None:
    spec = {
        "name": "send_sms",
        "description": "Send an SMS.",
        "risk": "high",
        "executor": "twilio_sms",
        "parameters": {"type": "object", "properties": {"to": {"type": "string"}}},
    }
    s = session(opts(tools=(spec, {"name": "end_call"}), tool_choice="send_sms"))
    assert s["tools"] == [
        {
            "type": "function",
            "name": "send_sms",
            "description": "Send an SMS.",
            "parameters": spec["parameters"],
        },
        {
            "type": "function",
            "name": "end_call",
            "parameters": {"type": "object", "properties": {}},
        },
    ]
    assert s["tool_choice"] == {"type": "function", "name": "send_sms"}
    for choice in ("auto", "none", "required"):
        assert session(opts(tool_choice=choice))["tool_choice"] == choice


def test_mcp_tools_pass_through() -> None:
    mcp = {"type": "mcp", "server_label": "cal", "server_url": "https://mcp.example/sse"}
    assert session(opts(tools=(mcp,)))["tools"] == [mcp]


@pytest.mark.parametrize(
    ("tools", "match"),
    [
        (({"description": "no name"},), "needs a name"),
        (({"type": "web", "name": "x"},), "type"),
        (("not a dict",), "must be an object"),
    ],
)
def test_bad_tools_are_config_errors(tools: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_session_update(opts(tools=tools))


def test_custom_voice_is_referenced_by_id() -> None:
    assert session(opts(voice="voice_abc123"))["audio"]["output"]["voice"] == {"id": "voice_abc123"}
    assert session(opts(voice="cedar"))["audio"]["output"]["voice"] == "cedar"


@pytest.mark.parametrize(
    "kw",
    [
        {"type": "vad"},
        {"eagerness": "eager"},
        {"threshold": 1.5},
        {"silence_duration_ms": -1},
        {"prefix_padding_ms": -1},
        {"idle_timeout_ms": 0},
        {"create_response": "yes"},
        {"silence": 300},
    ],
)
def test_turn_detection_is_validated(kw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        TurnDetection(**kw)
    (error,) = info.value.errors()
    assert error["loc"] == (next(iter(kw)),)


def test_other_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="noise_reduction"):
        opts(noise_reduction="studio")
    with pytest.raises(ConfigError, match="model"):
        opts(model="")
    with pytest.raises(ConfigError, match="tool_choice"):
        build_session_update(opts(tool_choice=""))


# --- from config ---------------------------------------------------------------------------
def test_from_default_config() -> None:
    rt = RealtimeConfig()
    o = session_options_from_config(rt)
    assert (o.model, o.voice, o.instructions) == (rt.model, rt.voice, rt.instructions)
    assert o.input_format == o.output_format == PCM16_24K
    assert o.transcription_model == rt.transcription_model
    assert o.turn_detection == TurnDetection()


def test_from_a_config_file_dict() -> None:
    settings = settings_from_dict(
        {
            "realtime": {
                "audio_out_format": "g711_alaw",
                "voice": "cedar",
                "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                "transcription_model": "",
                "noise_reduction": "far_field",
            }
        }
    )
    s = session(session_options_from_config(settings.realtime))
    assert s["audio"]["input"]["format"] == s["audio"]["output"]["format"] == {"type": "audio/pcma"}
    assert s["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    assert s["audio"]["input"]["transcription"] is None
    assert s["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
    assert s["audio"]["output"]["voice"] == "cedar"


def test_overrides_win_and_none_keeps_the_config() -> None:
    rt = RealtimeConfig(turn_detection=TurnDetection(silence_duration_ms=300))
    o = session_options_from_config(
        rt,
        model="gpt-realtime-2.1-mini",
        voice=None,
        instructions="Hi.",
        input_format="g711_ulaw",
        output_format=PCMU_8K,
        tools=[{"name": "end_call"}],
        turn_detection={"type": "server_vad", "silence_duration_ms": 700},
    )
    assert o.model == "gpt-realtime-2.1-mini"
    assert o.voice == rt.voice
    assert o.instructions == "Hi."
    assert o.input_format == o.output_format == PCMU_8K
    assert o.tools == ({"name": "end_call"},)
    assert o.turn_detection.silence_duration_ms == 700
    assert session_options_from_config(rt).turn_detection.silence_duration_ms == 300


def test_unknown_override_is_refused() -> None:
    with pytest.raises(TypeError, match="temperature"):
        session_options_from_config(RealtimeConfig(), temperature=0.8)


def test_bad_format_override_names_the_valid_ones() -> None:
    with pytest.raises(AudioFormatError, match="valid names"):
        session_options_from_config(RealtimeConfig(), output_format="opus")


# --- items -----------------------------------------------------------------------------------
def test_item_builders() -> None:
    assert user_text_item("hi") == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hi"}],
    }
    assert system_text_item("ctx")["content"][0] == {"type": "input_text", "text": "ctx"}
    assert system_text_item("ctx")["role"] == "system"
    assert assistant_text_item("ok")["content"][0] == {"type": "output_text", "text": "ok"}
    assert function_call_output_item("call_1", '{"ok":true}') == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"ok":true}',
    }
    with pytest.raises(TypeError, match="string"):
        function_call_output_item("call_1", {"ok": True})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="call_id"):
        function_call_output_item("", "x")
    with pytest.raises(TypeError):
        user_text_item(5)  # type: ignore[arg-type]
