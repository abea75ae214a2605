"""`session.update` validated as the real service does."""

from __future__ import annotations

from typing import Any

import pytest

from foreman.testing.mock_realtime import MockRealtimeServer

from .conftest import Client


async def update(
    client: Client, session: dict[str, Any], event_id: str = "evt_up"
) -> dict[str, Any]:
    await client.send({"type": "session.update", "event_id": event_id, "session": session})
    event = await client.recv()
    assert event["type"] in ("error", "session.updated")
    return event


@pytest.mark.parametrize(
    ("session", "code", "param", "message"),
    [
        (
            {"output_modalities": ["text"]},
            "missing_required_parameter",
            "session.type",
            "Missing required parameter: 'session.type'.",
        ),
        (
            {"modalities": ["text", "audio"], "voice": "alloy"},  # beta shape, no header
            "missing_required_parameter",
            "session.type",
            "Missing required parameter: 'session.type'.",
        ),
        (
            {"type": "realtime", "modalities": ["text"]},
            "unknown_parameter",
            "session.modalities",
            "Unknown parameter: 'session.modalities'.",
        ),
        (
            {"type": "realtime", "voice": "alloy"},
            "unknown_parameter",
            "session.voice",
            "Unknown parameter: 'session.voice'.",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "max_speech_ms": 1}}},
            },
            "unknown_parameter",
            "session.audio.input.turn_detection.max_speech_ms",
            "Unknown parameter: 'session.audio.input.turn_detection.max_speech_ms'.",
        ),
        (
            {"type": "beta"},
            "invalid_value",
            "session.type",
            "Invalid value: 'beta'. Supported values are: 'realtime' and 'transcription'.",
        ),
        (
            {"type": "realtime", "audio": {"output": {"format": {"type": "audio/mp3"}}}},
            "invalid_value",
            "session.audio.output.format.type",
            "Invalid value: 'audio/mp3'. "
            "Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
        ),
        (
            {"type": "realtime", "audio": {"input": {"format": "pcm16"}}},
            "invalid_type",
            "session.audio.input.format",
            "Invalid type for 'session.audio.input.format': expected an object, "
            "but got a string instead.",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
            "integer_below_min_value",
            "session.audio.input.format.rate",
            "Invalid 'session.audio.input.format.rate': integer below minimum value. "
            "Expected a value >= 24000, but got 16000 instead.",
        ),
        (
            {"type": "realtime", "output_modalities": ["audio", "text"]},
            "invalid_value",
            "session.output_modalities",
            None,
        ),
        (
            {"type": "realtime", "audio": {"output": {"speed": 3}}},
            "integer_above_max_value",
            "session.audio.output.speed",
            None,
        ),
        (
            {"type": "transcription"},
            "invalid_value",
            "session.type",
            "Passing a transcription session update event to a realtime session is not allowed.",
        ),
    ],
)
async def test_rejected_update_names_the_problem_and_applies_nothing(  # noqa: PLR0917
    mock_realtime: MockRealtimeServer,
    client: Client,
    session: dict[str, Any],
    code: str,
    param: str,
    message: str | None,
) -> None:
    mock_session = await mock_realtime.wait_for_session()
    before = dict(mock_session.config)
    # a valid change riding along with the bad one must not be applied either
    event = await update(client, {"instructions": "CHANGED", **session})
    assert event["type"] == "error"
    err = event["error"]
    assert (err["code"], err["param"]) == (code, param)
    assert err["type"] == "invalid_request_error"
    assert err["event_id"] == "evt_up"
    if message is not None:
        assert err["message"] == message
    assert mock_session.config == before


async def test_update_merges_and_echoes_the_full_config(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    event = await update(
        client,
        {
            "type": "realtime",
            "output_modalities": ["text"],
            "instructions": "Be brief.",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                },
                "output": {"voice": "marin"},
            },
            "tools": [{"type": "function", "name": "get_time", "parameters": {"type": "object"}}],
        },
    )
    assert event["type"] == "session.updated"
    s = event["session"]
    assert s["output_modalities"] == ["text"] and s["instructions"] == "Be brief."
    assert s["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    # untouched fields keep their values; turn_detection is filled with defaults
    assert s["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["output"]["voice"] == "marin"
    td = s["audio"]["input"]["turn_detection"]
    assert td["silence_duration_ms"] == 500 and td["prefix_padding_ms"] == 300
    assert s["tools"][0]["name"] == "get_time"
    assert "event_id" in event and event["event_id"] != "evt_up"  # success does not echo it
    # a partial update changes one field only
    event = await update(client, {"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    assert event["session"]["audio"]["input"]["turn_detection"] is None
    assert event["session"]["instructions"] == "Be brief."
    session = await mock_realtime.wait_for_session()
    assert session.config == event["session"]


async def test_voice_is_locked_once_audio_was_produced(client: Client) -> None:
    event = await update(client, {"type": "realtime", "audio": {"output": {"voice": "cedar"}}})
    assert event["type"] == "session.updated"
    await client.send({"type": "response.create"})
    await client.until("rate_limits.updated")
    event = await update(client, {"type": "realtime", "audio": {"output": {"voice": "marin"}}})
    assert event["type"] == "error"
    assert event["error"]["message"] == (
        "Cannot update a conversation's voice if assistant audio is present."
    )
    # the same voice again is not a change
    event = await update(client, {"type": "realtime", "audio": {"output": {"voice": "cedar"}}})
    assert event["type"] == "session.updated"
