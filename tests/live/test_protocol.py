"""The sans-I/O GPT-Live client, fed the example frames of the protocol reference: parsing,
the phase table, delegation bookkeeping (claim once, completed function calls only, one
output per call then one continuation, stale outputs dropped), and conformance of every
client event Foreman builds with the official SDK's unions (no unknown fields)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from live_wire import client_event_problems

from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K, AudioFormat
from foreman.exceptions import AudioFormatError, RemoteProtocolError
from foreman.protocols.live import client_events as ce
from foreman.protocols.live import events as ev
from foreman.protocols.live.client import LiveClient, LivePhase
from foreman.protocols.live.delegations import DelegationDone, FunctionCallRequested
from foreman.protocols.live.session_config import (
    LiveSessionOptions,
    audio_format_to_wire,
    build_session_config,
)

TOOL = {
    "type": "function",
    "name": "send_sms",
    "description": "Send a text message.",
    "parameters": {"type": "object", "properties": {"to": {"type": "string"}}},
}
STARTED = {
    "type": "session.started",
    "event_id": "event_1",
    "session": {
        "id": "live_abc",
        "expires_at": 1_900_000_000,
        "model": "gpt-live-1",
        "status": "active",
        "audio": {"format": {"type": "audio/pcmu", "rate": 8000}},
    },
}


def options(**kw: Any) -> LiveSessionOptions:
    base: dict[str, Any] = dict(
        model="gpt-live-1",
        instructions="Be brief.",
        audio_format=PCMU_8K,
        voice="marin",
        backend_model="gpt-6-luna",
        backend_instructions="Use the tools.",
        tools=(TOOL,),
        history=(("user", "hi"), ("assistant", "hello"), ("system", "summary")),
    )
    return LiveSessionOptions(**{**base, **kw})


def envelope(delegation_id: str | None, nested: dict[str, Any]) -> str:
    return json.dumps(
        {"type": "response.event", "event_id": "e", "delegation_id": delegation_id, "event": nested}
    )


def created(response_id: str) -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": response_id, "output": []}}


def completed(response_id: str) -> dict[str, Any]:
    return {"type": "response.completed", "response": {"id": response_id, "output": []}}


def call_done(call_id: str, name: str = "send_sms", status: str = "completed") -> dict[str, Any]:
    item = {
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": "{}",
        "status": status,
    }
    return {"type": "response.output_item.done", "output_index": 0, "item": item}


def delegation(delegation_id: str) -> str:
    return json.dumps(
        {
            "type": "session.delegation.created",
            "event_id": "e",
            "offset_ms": 1200,
            "delegation": {
                "id": delegation_id,
                "type": "delegation",
                "target": "responses",
                "response_id": "resp_1",
            },
        }
    )


def active_client() -> LiveClient:
    client = LiveClient(build_session_config(options()))
    client.start()
    client.receive(json.dumps(STARTED))
    client.data_to_send()
    return client


# --- session config and client events -------------------------------------------------------
def test_session_start_holds_only_live_fields_and_validates_against_the_sdk() -> None:
    client = LiveClient(build_session_config(options()))
    client.start()
    (frame,) = client.data_to_send()
    event = json.loads(frame)
    assert client_event_problems(event) == []
    session = event["session"]
    assert set(session) == {"model", "instructions", "audio", "delegation", "input"}
    assert session["audio"] == {
        "format": {"type": "audio/pcmu", "rate": 8000},
        "output": {"voice": "marin"},
    }
    responses = session["delegation"]["responses"]
    assert responses["tools"] == [
        {
            "type": "function",
            "name": "send_sms",
            "description": TOOL["description"],
            "parameters": TOOL["parameters"],
        }
    ]
    assert responses["parallel_tool_calls"] is False
    assert [m["role"] for m in session["input"]] == ["user", "assistant", "developer"]


@pytest.mark.parametrize(
    ("fmt", "wire"),
    [
        (PCMU_8K, {"type": "audio/pcmu", "rate": 8000}),
        (PCMA_8K, {"type": "audio/pcma", "rate": 8000}),
        (PCM16_24K, {"type": "audio/pcm", "rate": 24000}),
        (AudioFormat.from_name("pcm16", 16000), {"type": "audio/pcm", "rate": 16000}),
    ],
)
def test_audio_formats_name_their_rate(fmt: AudioFormat, wire: dict[str, Any]) -> None:
    assert audio_format_to_wire(fmt) == wire


def test_pcm16_at_8k_is_refused_in_one_line() -> None:
    with pytest.raises(AudioFormatError, match="16000 or 24000"):
        audio_format_to_wire(AudioFormat.from_name("pcm16", 8000))


def test_every_client_event_foreman_sends_validates_against_the_sdk() -> None:
    frames = [
        ce.input_audio_append("//8="),
        ce.append("instructions", "Greet the caller."),
        ce.append("thinking", "The caller pressed 5."),
        ce.append("commentary", "It is noon."),
        ce.response_item_create(ce.function_call_output("call_1", '{"ok": true}')),
        ce.response_item_create(ce.user_message("hello")),
        ce.response_create(),
        ce.session_close(),
    ]
    for frame in frames:
        assert client_event_problems(json.loads(frame)) == [], frame


def test_an_append_always_carries_a_null_delegation_id() -> None:
    event = json.loads(ce.append("thinking", "x" * 5000))
    assert "delegation_id" in event and event["delegation_id"] is None
    assert len(event["content"]) == ce.MAX_APPEND_CHARS


# --- parsing --------------------------------------------------------------------------------
def test_reference_frames_parse_into_records() -> None:
    assert ev.parse_server_event(json.dumps(STARTED)) == ev.SessionStarted(
        "live_abc", "gpt-live-1", 1_900_000_000, STARTED["session"]
    )
    frames: list[tuple[dict[str, Any], Any]] = [
        ({"type": "session.output_audio.delta", "delta": "//8="}, ev.OutputAudioDelta("//8=")),
        (
            {
                "type": "session.input_transcript.delta",
                "event_id": "e",
                "delta": "Hi",
                "start_ms": 100,
                "end_ms": 400,
            },
            ev.InputTranscriptDelta("Hi", 100, 400),
        ),
        (
            {
                "type": "session.output_transcript.delta",
                "event_id": "e",
                "delta": " there",
                "start_ms": 500,
                "end_ms": 700,
            },
            ev.OutputTranscriptDelta(" there", 500, 700),
        ),
        (
            json.loads(delegation("deleg_1")),
            ev.DelegationCreated("deleg_1", "responses", "resp_1", 1200),
        ),
        (
            {
                "type": "session.usage.updated",
                "event_id": "e",
                "usage": {"seconds": 12.5},
                "context_window": {"usage_ratio": 0.1},
            },
            ev.UsageUpdated(12.5, 0.1),
        ),
        (
            {
                "type": "session.closed",
                "event_id": "e",
                "reason": "expired",
                "usage": {"seconds": 90},
                "session": STARTED["session"],
            },
            ev.SessionClosed("expired", 90.0),
        ),
        (
            {
                "type": "session.thinking.appended",
                "event_id": "e",
                "start_ms": 3,
                "end_ms": 3,
                "client_event_id": "c1",
            },
            ev.Appended("thinking", 3, 3, "c1"),
        ),
        (
            {
                "type": "error",
                "event_id": "e",
                "error": {
                    "type": "invalid_request_error",
                    "code": "immutable_field_update",
                    "message": "no",
                    "param": "session.model",
                    "client_event_id": "c2",
                },
            },
            ev.ErrorEvent(
                "immutable_field_update", "no", "invalid_request_error", "session.model", "c2"
            ),
        ),
    ]
    for raw, record in frames:
        assert ev.parse_server_event(json.dumps(raw)) == record


def test_an_unknown_type_is_kept_not_rejected() -> None:
    parsed = ev.parse_server_event('{"type": "session.input_audio.speech_started"}')
    assert isinstance(parsed, ev.UnknownEvent) and parsed.type.endswith("speech_started")


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"no": "type"}',
        '{"type": "session.output_audio.delta"}',
        '{"type": "session.input_transcript.delta", "delta": "x", "start_ms": "0", "end_ms": 1}',
        '{"type": "session.started", "session": {"id": "live_1"}}',
        '{"type": "session.usage.updated", "usage": {"seconds": true}}',
    ],
)
def test_a_malformed_frame_is_one_protocol_error(frame: str) -> None:
    with pytest.raises(RemoteProtocolError):
        ev.parse_server_event(frame)


# --- phases ---------------------------------------------------------------------------------
def test_phases_follow_the_table() -> None:
    client = LiveClient(build_session_config(options()))
    assert client.send_audio("AAAA") is None  # no timeline before the session started
    client.start()
    assert client.phase is LivePhase.STARTING
    with pytest.raises(RemoteProtocolError):  # audio before session.started is illegal
        client.receive('{"type": "session.output_audio.delta", "delta": "AAAA"}')
    client.receive(json.dumps(STARTED))
    assert client.phase is LivePhase.ACTIVE and client.session_id == "live_abc"
    assert client.send_audio("AAAA") == '{"type":"session.input_audio.append","audio":"AAAA"}'
    with pytest.raises(RemoteProtocolError):  # a second start
        client.receive(json.dumps(STARTED))
    client.close()
    assert client.phase is LivePhase.CLOSING
    assert json.loads(client.data_to_send()[-1]) == {"type": "session.close"}
    client.receive(
        json.dumps(
            {
                "type": "session.closed",
                "event_id": "e",
                "reason": "close_requested",
                "usage": {"seconds": 42.0},
                "session": STARTED["session"],
            }
        )
    )
    assert client.closed and client.usage_seconds == 42.0


def test_a_startup_error_fails_the_session() -> None:
    client = LiveClient(build_session_config(options()))
    client.start()
    client.receive(
        json.dumps(
            {
                "type": "error",
                "event_id": "e",
                "error": {
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                    "message": "no access",
                },
            }
        )
    )
    assert client.phase is LivePhase.FAILED
    assert client.startup_error is not None and client.startup_error.code == "model_not_found"


# --- delegations ----------------------------------------------------------------------------
def test_a_delegation_is_claimed_once_and_calls_come_from_completed_items_only() -> None:
    client = active_client()
    client.receive(delegation("deleg_1"))
    client.receive(delegation("deleg_1"))  # a repeated notice changes nothing
    assert client.busy and client.delegations.counters["delegations"] == 1
    assert client.receive(envelope("deleg_1", created("resp_1")))[1:] == []
    # an item still in progress is not a call yet; the arguments-done event has no call id
    assert client.receive(envelope("deleg_1", call_done("call_1", status="in_progress")))[1:] == []
    notices = client.receive(envelope("deleg_1", call_done("call_1")))[1:]
    assert notices == [FunctionCallRequested("call_1", "send_sms", "{}", "deleg_1")]
    assert client.receive(envelope("deleg_1", call_done("call_1")))[1:] == []  # asked once
    client.receive(envelope("deleg_1", completed("resp_1")))
    assert client.busy  # the call still needs its output


def test_one_output_per_call_then_one_continuation() -> None:
    client = active_client()
    client.receive(delegation("deleg_1"))
    client.receive(envelope("deleg_1", created("resp_1")))
    client.receive(envelope("deleg_1", call_done("call_a")))
    client.receive(envelope("deleg_1", call_done("call_b", name="get_time")))
    client.receive(envelope("deleg_1", completed("resp_1")))
    client.answer_call("call_a", "A")
    first = [json.loads(f) for f in client.data_to_send()]
    assert [f["type"] for f in first] == ["response.item.create"]  # call_b is still owed
    client.answer_call("call_b", "B")
    second = [json.loads(f) for f in client.data_to_send()]
    assert [f["type"] for f in second] == ["response.item.create", "response.create"]
    assert second[0]["item"] == {"type": "function_call_output", "call_id": "call_b", "output": "B"}
    # a stale output (already answered, or never asked) is dropped
    client.answer_call("call_a", "again")
    client.answer_call("call_zzz", "?")
    assert client.data_to_send() == []
    assert client.delegations.counters["stale_outputs"] == 2
    # the continuation runs until its response completes; then nothing is owed
    assert client.busy
    client.receive(envelope("deleg_1", created("resp_2")))
    notices = client.receive(envelope("deleg_1", completed("resp_2")))[1:]
    assert notices == [DelegationDone()] and not client.busy


def test_an_output_without_continuation_leaves_nothing_owed() -> None:
    client = active_client()
    client.receive(delegation("deleg_1"))
    client.receive(envelope("deleg_1", created("resp_1")))
    client.receive(envelope("deleg_1", call_done("call_end", name="end_call")))
    client.receive(envelope("deleg_1", completed("resp_1")))
    assert client.answer_call("call_end", '{"ok": true}', continue_=False) is True
    assert [json.loads(f)["type"] for f in client.data_to_send()] == ["response.item.create"]
    assert not client.busy


def test_a_typed_turn_is_a_user_message_then_a_response() -> None:
    client = active_client()
    client.send_user_text("what time is it")
    frames = [json.loads(f) for f in client.data_to_send()]
    assert [f["type"] for f in frames] == ["response.item.create", "response.create"]
    assert frames[0]["item"]["content"] == [{"type": "input_text", "text": "what time is it"}]
    assert client.busy
    client.receive(envelope(None, created("resp_t")))
    assert client.receive(envelope(None, completed("resp_t")))[1:] == [DelegationDone()]


def test_nothing_is_answered_once_closing_began() -> None:
    client = active_client()
    client.receive(delegation("deleg_1"))
    client.receive(envelope("deleg_1", call_done("call_1")))
    client.close()
    client.data_to_send()
    client.answer_call("call_1", "late")
    assert client.data_to_send() == []  # session.close cancels queued backend work
