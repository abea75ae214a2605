"""Replay recorded GA traces (tests/fixtures/realtime/*.jsonl) through RealtimeSession."""

from __future__ import annotations

import base64
import json

import pytest
from rt_replay import TRACES, load_trace, replay

from foreman.exceptions import InvalidState
from foreman.protocols.realtime import (
    ErrorNotice,
    FunctionCallReady,
    InputAudioBufferAppend,
    Phase,
    RealtimeSession,
    SessionUpdate,
    UnknownEvent,
    parse_client_event,
)
from foreman.protocols.realtime import server_events as se


def _audio_bytes(name: str, item_id: str) -> int:
    return sum(
        len(base64.b64decode(ev["delta"]))
        for d, ev in load_trace(name)
        if d == "<" and ev["type"] == "response.output_audio.delta" and ev["item_id"] == item_id
    )


def test_every_trace_replays_and_types_every_event() -> None:
    assert len(TRACES) >= 7
    for name in TRACES:
        r = replay(name)
        events = [x for x in r.received if isinstance(x, se.KnownServerEvent | UnknownEvent)]
        n_server = sum(1 for d, _ in load_trace(name) if d == "<")
        assert len(events) == n_server, name
        assert not any(isinstance(e, UnknownEvent) for e in events), name
        assert r.session.counters["events_in"] == n_server


def test_voice_turn_trace() -> None:
    r = replay("voice_turn.jsonl")
    rt = r.session
    assert rt.phase is Phase.CONFIGURED
    assert rt.session_id == "sess_C9fR2x7pLq"
    assert rt.model == "gpt-realtime-2.1"
    assert rt.effective_session is not None
    assert rt.effective_session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    assert rt.active_response_id is None  # response.done cleared it
    # Audio accounting: PCM16 24 kHz, bytes / 48 = ms.
    received = _audio_bytes("voice_turn.jsonl", "item_C9fA001")
    assert received > 0
    assert rt.audio_received_ms("item_C9fA001") == received * 1000 // 48000
    assert rt.counters["audio_bytes_in"] == received
    appended = sum(
        len(base64.b64decode(ev["audio"]))
        for d, ev in load_trace("voice_turn.jsonl")
        if d == ">" and ev["type"] == "input_audio_buffer.append"
    )
    assert rt.counters["audio_bytes_out"] == appended
    assert rt.counters["responses"] == 1
    assert rt.counters["errors"] == rt.counters["unknown_events"] == 0
    transcript = "".join(e.delta for e in r.of_type(se.ResponseOutputAudioTranscriptDelta)).strip()
    assert transcript == "It is sunny in Paris, about twenty degrees."
    done = r.of_type(se.InputAudioTranscriptionCompleted)
    assert [d.transcript for d in done] == ["What is the weather in Paris today?"]
    assert r.of_type(se.ResponseContentPartAdded)[0].part["type"] == "audio"
    assert "item_C9fU001" in rt.items and "item_C9fA001" in rt.items
    assert rt.items["item_C9fA001"]["status"] == "completed"


def test_active_response_is_tracked_mid_trace() -> None:
    rt = RealtimeSession()
    seen = []
    for direction, event in load_trace("voice_turn.jsonl"):
        if direction == "<":
            rt.receive(json.dumps(event))
            seen.append((event["type"], rt.active_response_id))
        elif event["type"] == "session.update":
            rt.send(SessionUpdate(session=event["session"], event_id=event["event_id"]))
        else:
            rt.send_audio(event["audio"])
    by_type = dict(seen)
    assert by_type["response.created"] == "resp_C9fR001"
    assert by_type["response.output_audio.delta"] == "resp_C9fR001"
    assert by_type["response.done"] is None


def test_function_call_turn_trace() -> None:
    r = replay("function_call_turn.jsonl")
    calls = r.of_type(FunctionCallReady)
    assert calls == [
        FunctionCallReady(
            call_id="call_Wx7hPq2",
            name="get_weather",
            arguments='{"city":"Paris"}',
            item_id="item_FF001",
            response_id="resp_FC001",
        )
    ]
    # The call is reported right after function_call_arguments.done, not later.
    idx = r.received.index(calls[0])
    assert isinstance(r.received[idx - 1], se.ResponseFunctionCallArgumentsDone)
    assert r.session.counters["function_calls"] == 1
    assert r.session.counters["responses"] == 2
    assert r.session.phase is Phase.CONFIGURED
    assert r.session.pending_call_ids == ()


def test_parallel_calls_assemble_both_and_fall_back_to_output_item_done() -> None:
    r = replay("parallel_calls.jsonl")
    calls = {c.call_id: c for c in r.of_type(FunctionCallReady)}
    assert len(r.of_type(FunctionCallReady)) == 2  # never twice
    assert calls["call_P1"].arguments == '{"city":"Oslo"}'
    assert calls["call_P2"].arguments == '{"city":"Lima"}'
    assert calls["call_P2"].name == "get_time" and calls["call_P2"].item_id == "item_P2"
    # call_P2 had no .done: it came from its output_item.done.
    idx = r.received.index(calls["call_P2"])
    assert isinstance(r.received[idx - 1], se.ResponseOutputItemDone)


def test_barge_in_truncate_and_harmless_cancel() -> None:
    rt = RealtimeSession()
    lines = load_trace("barge_in.jsonl")
    out: list[object] = []
    for direction, event in lines:
        if direction == "<":
            out.extend(rt.receive(json.dumps(event)))
            if event["type"] == "input_audio_buffer.speech_started":
                break
        else:
            rt.send(parse_client_event(event))
    # 5 deltas of 1600 u-law bytes = 1000 ms received (bytes / 8).
    assert rt.audio_received_ms("item_BA001") == 1000
    assert rt.output_format.encoding == "pcmu"
    assert rt.active_response_id == "resp_BI001"
    trunc = rt.clamp_truncate("item_BA001", 0, 640)
    assert trunc is not None and trunc.audio_end_ms == 640
    assert rt.clamp_truncate("item_BA001", 0, 5000) is None  # heard it all: no truncate
    assert rt.clamp_truncate("item_unknown", 0, 10) is None
    r = replay("barge_in.jsonl")
    notices = r.of_type(ErrorNotice)
    assert [(n.severity, n.code, n.client_event_type) for n in notices] == [
        ("harmless", "response_cancel_not_active", "response.cancel")
    ]
    done = r.of_type(se.ResponseDone)[0]
    assert done.status == "cancelled"
    assert done.response["status_details"]["reason"] == "turn_detected"
    assert r.session.active_response_id is None
    assert r.session.phase is Phase.CONFIGURED
    # After conversation.item.truncated at 640 ms the item is that long: never claim more.
    assert r.session.clamp_truncate("item_BA001", 0, 800) is None
    later = r.session.clamp_truncate("item_BA001", 0, 300)
    assert later is not None and later.audio_end_ms == 300


def test_errors_beta_is_fatal_before_session_created() -> None:
    r = replay("errors_beta.jsonl")
    (notice,) = r.of_type(ErrorNotice)
    assert notice.severity == "fatal" and notice.code == "beta_api_shape_disabled"
    assert r.session.phase is Phase.ERROR
    assert r.session.last_error is not None
    assert "beta_api_shape_disabled" in r.session.last_error
    with pytest.raises(InvalidState, match="ERROR"):
        r.session.send(InputAudioBufferAppend("AAAA"))


def test_errors_config_rejected_is_fatal() -> None:
    r = replay("errors_config_rejected.jsonl")
    (notice,) = r.of_type(ErrorNotice)
    assert notice.severity == "fatal"
    assert notice.event_id == "cfg-1"
    assert notice.client_event_type == "session.update"
    assert notice.param == "session.modalities"
    assert r.session.phase is Phase.ERROR
    assert "unknown_parameter" in (r.session.last_error or "")


def test_errors_midcall_severities() -> None:
    r = replay("errors_midcall.jsonl")
    got = [(n.severity, n.code, n.client_event_type) for n in r.of_type(ErrorNotice)]
    assert got == [
        ("harmless", "input_audio_buffer_commit_empty", "input_audio_buffer.commit"),
        ("recoverable", "conversation_already_has_active_response", "response.create"),
        ("recoverable", None, None),
        ("fatal", "session_expired", None),
    ]
    assert r.session.phase is Phase.ERROR
    assert r.session.counters["errors"] == 4
    assert r.session.effective_session is not None
    assert r.session.effective_session["audio"]["input"]["turn_detection"] is None


def test_text_turn_and_side_events() -> None:
    r = replay("text_turn.jsonl")
    rt = r.session
    assert rt.phase is Phase.CONFIGURED
    assert rt.effective_session is not None
    assert rt.effective_session["output_modalities"] == ["text"]
    assert "".join(e.delta for e in r.of_type(se.ResponseOutputTextDelta)) == (
        "Hello! How can I help?"
    )
    assert [e.text for e in r.of_type(se.ResponseOutputTextDone)] == ["Hello! How can I help?"]
    assert rt.counters["audio_bytes_in"] == 0
    assert "item_TU001" in rt.items  # learnt from the beta-named conversation.item.created
    (dtmf,) = r.of_type(se.InputAudioBufferDtmfEventReceived)
    assert (dtmf.event, dtmf.received_at, dtmf.event_id) == ("5", 1795000123, "")
    (idle,) = r.of_type(se.InputAudioBufferTimeoutTriggered)
    assert (idle.audio_start_ms, idle.audio_end_ms) == (9000, 15000)
    (failed,) = r.of_type(se.InputAudioTranscriptionFailed)
    assert failed.error["code"] == "audio_unintelligible"
    assert rt.counters["errors"] == 0  # a failed transcription is not an `error`
    assert r.of_type(ErrorNotice) == []
