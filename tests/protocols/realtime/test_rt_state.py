"""RealtimeSession: the phase table, error classification, responses, audio accounting."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from foreman.exceptions import InvalidState, RemoteProtocolError
from foreman.protocols.realtime import (
    CLIENT_EVENT_TYPES,
    ConversationItemCreate,
    ConversationItemDelete,
    ConversationItemRetrieve,
    ConversationItemTruncate,
    ErrorNotice,
    InputAudioBufferAppend,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    OutputAudioBufferClear,
    Phase,
    RealtimeSession,
    ResponseCancel,
    ResponseCreate,
    SessionUpdate,
    UnknownEvent,
    classify_error,
    user_text_item,
)
from foreman.protocols.realtime import server_events as se
from foreman.protocols.realtime.client_events import ClientEvent
from foreman.testing.speech import synthesize

PCMU = {"type": "audio/pcmu"}
PCM = {"type": "audio/pcm", "rate": 24000}


def frame(type_: str, **fields: Any) -> str:
    return json.dumps({"type": type_, "event_id": "event_x", **fields})


def session_obj(out_fmt: dict[str, Any] | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "realtime", "id": "sess_1", "model": "gpt-realtime-2.1"}
    if out_fmt is not None:
        s["audio"] = {"output": {"format": out_fmt}}
    return s


def at(phase: Phase, out_fmt: dict[str, Any] | None = None) -> RealtimeSession:
    """A session driven to `phase` through real events."""
    rt = RealtimeSession()
    if phase is Phase.CONNECTING:
        return rt
    rt.receive(frame("session.created", session=session_obj()))
    if phase is Phase.CREATED:
        return rt
    rt.send(SessionUpdate({"type": "realtime"}, event_id="cfg-1"))
    if phase is Phase.CONFIGURING:
        return rt
    rt.receive(frame("session.updated", session=session_obj(out_fmt)))
    if phase is Phase.CONFIGURED:
        return rt
    if phase is Phase.CLOSED:
        rt.close()
        return rt
    rt.receive(frame("error", error={"type": "x", "code": "session_expired", "message": "m"}))
    assert rt.phase is Phase.ERROR
    return rt


ONE_OF_EACH: list[ClientEvent] = [
    SessionUpdate({"type": "realtime"}),
    InputAudioBufferAppend("AAAA"),
    InputAudioBufferCommit(),
    InputAudioBufferClear(),
    ConversationItemCreate(user_text_item("hi")),
    ConversationItemRetrieve("i"),
    ConversationItemTruncate("i", 0, 10),
    ConversationItemDelete("i"),
    ResponseCreate(),
    ResponseCancel(),
    OutputAudioBufferClear(),
]
ALLOWED_IN_CREATED = {
    "session.update",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.delete",
    "input_audio_buffer.clear",
}


def test_one_of_each_covers_every_client_event() -> None:
    assert {type(e) for e in ONE_OF_EACH} == set(CLIENT_EVENT_TYPES.values())


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: e.type)
def test_send_table(phase: Phase, event: ClientEvent) -> None:
    rt = at(phase)
    allowed = phase in (Phase.CONFIGURING, Phase.CONFIGURED) or (
        phase is Phase.CREATED and event.type in ALLOWED_IN_CREATED
    )
    if allowed:
        text = rt.send(event)
        assert json.loads(text)["type"] == event.type
        expected = (
            Phase.CONFIGURING
            if phase is Phase.CREATED and event.type == "session.update"
            else phase
        )
        assert rt.phase is expected
    else:
        before = rt.counters["events_out"]
        with pytest.raises(InvalidState) as info:
            rt.send(event)
        msg = str(info.value)
        assert "client" in msg and phase.name in msg and event.type in msg
        assert rt.phase is phase  # an illegal send changes nothing
        assert rt.counters["events_out"] == before


@pytest.mark.parametrize("phase", list(Phase))
def test_send_audio_follows_the_same_table(phase: Phase) -> None:
    rt = at(phase)
    if phase in (Phase.CONFIGURING, Phase.CONFIGURED):
        assert json.loads(rt.send_audio("AAAA"))["audio"] == "AAAA"
    else:
        with pytest.raises(InvalidState, match=f"input_audio_buffer.append in state {phase.name}"):
            rt.send_audio("AAAA")


def test_hints_in_invalid_state_messages() -> None:
    with pytest.raises(InvalidState, match=r"wait for session\.created"):
        at(Phase.CONNECTING).send(SessionUpdate({"type": "realtime"}))
    with pytest.raises(InvalidState, match=r"send session\.update first"):
        at(Phase.CREATED).send(ResponseCreate())
    with pytest.raises(InvalidState, match="session_expired"):
        at(Phase.ERROR).send(ResponseCreate())


@pytest.mark.parametrize("phase", [Phase.CLOSED, Phase.ERROR])
def test_receive_after_close_or_error_is_invalid_state(phase: Phase) -> None:
    rt = at(phase)
    with pytest.raises(InvalidState, match=phase.name):
        rt.receive(frame("input_audio_buffer.cleared"))


def test_first_event_must_be_session_created() -> None:
    rt = RealtimeSession()
    with pytest.raises(
        RemoteProtocolError, match=r"response.created is illegal in state CONNECTING"
    ):
        rt.receive(frame("response.created", response={"id": "r"}))
    assert rt.phase is Phase.ERROR
    assert rt.last_error is not None


def test_tolerated_before_session_created() -> None:
    rt = RealtimeSession()
    for f in (
        frame("conversation.created", conversation={"id": "conv_1"}),
        frame("whatever.new"),
        frame("rate_limits.updated", rate_limits=[]),
    ):
        rt.receive(f)
    assert rt.phase is Phase.CONNECTING
    rt.receive(frame("session.created", session=session_obj()))
    assert rt.phase is Phase.CREATED


@pytest.mark.parametrize("phase", [Phase.CREATED, Phase.CONFIGURING, Phase.CONFIGURED])
def test_second_session_created_is_a_protocol_violation_and_error_is_sticky(phase: Phase) -> None:
    rt = at(phase)
    with pytest.raises(
        RemoteProtocolError, match=f"session.created is illegal in state {phase.name}"
    ):
        rt.receive(frame("session.created", session=session_obj()))
    assert rt.phase is Phase.ERROR
    rt.close()
    assert rt.phase is Phase.ERROR  # sticky: close keeps the reason
    with pytest.raises(InvalidState):
        rt.send(ResponseCreate())


def test_a_bad_frame_changes_nothing_and_the_session_goes_on() -> None:
    rt = at(Phase.CONFIGURED)
    for bad in ("{oops", "[]", frame("response.output_audio.delta", response_id="r")):
        with pytest.raises(RemoteProtocolError):
            rt.receive(bad)
    assert rt.phase is Phase.CONFIGURED
    assert rt.counters["bad_frames"] == 3
    out = rt.receive(frame("input_audio_buffer.cleared"))
    assert isinstance(out[0], se.InputAudioBufferCleared)


def test_session_updated_configures_and_records_effective_session() -> None:
    rt = at(Phase.CONFIGURING)
    assert rt.effective_session == session_obj()
    sess = {**session_obj(PCMU), "voice": "x"}
    rt.receive(frame("session.updated", session=sess))
    assert rt.phase is Phase.CONFIGURED
    assert rt.effective_session == sess
    assert rt.session_id == "sess_1" and rt.model == "gpt-realtime-2.1"
    assert rt.output_format.encoding == "pcmu"
    # A later update keeps the session configured.
    rt.send(SessionUpdate({"type": "realtime", "instructions": "x"}))
    assert rt.phase is Phase.CONFIGURED


def test_close_is_idempotent() -> None:
    rt = at(Phase.CONFIGURED)
    rt.close()
    rt.close()
    assert rt.phase is Phase.CLOSED


def test_unknown_events_are_counted_and_returned() -> None:
    rt = at(Phase.CONFIGURED)
    (ev,) = rt.receive(frame("brand.new", x=1))
    assert isinstance(ev, UnknownEvent)
    assert rt.counters["unknown_events"] == 1
    assert rt.phase is Phase.CONFIGURED


# --- event ids and error correlation -------------------------------------------------------
def test_session_assigns_unique_event_ids_and_keeps_given_ones() -> None:
    rt = at(Phase.CONFIGURED)
    ids = [json.loads(rt.send(ResponseCancel()))["event_id"] for _ in range(3)]
    assert len(set(ids)) == 3 and all(i.startswith("fm-") for i in ids)
    assert json.loads(rt.send(ResponseCancel(event_id="mine")))["event_id"] == "mine"
    assert "event_id" not in json.loads(rt.send(InputAudioBufferAppend("AAAA")))


def _error(code: str | None, event_id: str | None = None, param: str | None = None) -> str:
    return frame(
        "error",
        error={
            "type": "invalid_request_error",
            "code": code,
            "message": f"msg {code}",
            "param": param,
            "event_id": event_id,
        },
    )


def test_error_notices_name_the_client_event() -> None:
    rt = at(Phase.CONFIGURED)
    eid = json.loads(rt.send(ConversationItemTruncate("item_1", 0, 999)))["event_id"]
    ev, notice = rt.receive(_error("invalid_value", eid, "audio_end_ms"))
    assert isinstance(ev, se.ErrorEvent) and isinstance(notice, ErrorNotice)
    assert notice == ErrorNotice(
        "harmless",
        "invalid_value",
        "msg invalid_value",
        eid,
        "audio_end_ms",
        "conversation.item.truncate",
    )
    assert rt.phase is Phase.CONFIGURED


def test_rejected_session_update_mid_call_is_recoverable() -> None:
    rt = at(Phase.CONFIGURED)
    rt.send(SessionUpdate({"type": "realtime", "tool_choice": "x"}, event_id="cfg-2"))
    _, notice = rt.receive(_error("invalid_value", "cfg-2", "session.tool_choice"))
    assert isinstance(notice, ErrorNotice)
    assert notice.severity == "recoverable"
    assert rt.phase is Phase.CONFIGURED


def test_rejected_first_session_update_without_echoed_id_is_fatal_by_param() -> None:
    rt = at(Phase.CONFIGURING)
    _, notice = rt.receive(_error("missing_required_parameter", None, "session.type"))
    assert isinstance(notice, ErrorNotice) and notice.fatal
    assert rt.phase is Phase.ERROR
    assert rt.last_error == "missing_required_parameter: msg missing_required_parameter"


def test_unrelated_error_while_configuring_is_recoverable() -> None:
    rt = at(Phase.CONFIGURING)
    _, notice = rt.receive(_error(None))
    assert isinstance(notice, ErrorNotice) and notice.severity == "recoverable"
    assert rt.phase is Phase.CONFIGURING
    rt.receive(frame("session.updated", session=session_obj()))
    assert rt.phase is Phase.CONFIGURED


def test_any_error_before_session_created_is_fatal() -> None:
    rt = RealtimeSession()
    _, notice = rt.receive(_error("invalid_api_key"))
    assert isinstance(notice, ErrorNotice) and notice.fatal
    rt2 = RealtimeSession()
    _, notice2 = rt2.receive(_error("some_new_code"))
    assert isinstance(notice2, ErrorNotice) and notice2.fatal
    assert rt2.phase is Phase.ERROR


@pytest.mark.parametrize(
    ("code", "client_type", "configured", "param", "severity"),
    [
        ("response_cancel_not_active", "response.cancel", True, None, "harmless"),
        ("response_cancel_not_active", None, True, None, "harmless"),
        ("input_audio_buffer_commit_empty", "input_audio_buffer.commit", True, None, "harmless"),
        ("conversation_already_has_active_response", "response.create", True, None, "recoverable"),
        ("invalid_value", "conversation.item.truncate", True, "audio_end_ms", "harmless"),
        ("item_not_found", "conversation.item.truncate", True, None, "harmless"),
        ("item_not_found", "conversation.item.retrieve", True, None, "recoverable"),
        ("rate_limit_exceeded", None, True, None, "recoverable"),
        (None, None, True, None, "recoverable"),
        ("beta_api_shape_disabled", None, True, None, "fatal"),
        ("session_expired", None, True, None, "fatal"),
        ("invalid_api_key", None, False, None, "fatal"),
        ("insufficient_quota", "response.create", True, None, "fatal"),
        ("unknown_parameter", "session.update", False, "session.x", "fatal"),
        ("invalid_value", "session.update", False, None, "fatal"),
        ("unknown_parameter", "session.update", True, "session.x", "recoverable"),
        ("unknown_parameter", None, False, "session.modalities", "fatal"),
        ("unknown_parameter", None, False, "response.x", "recoverable"),
        ("unknown_parameter", "response.create", False, "session.x", "recoverable"),
    ],
)
def test_classify_error(
    code: str | None, client_type: str | None, configured: bool, param: str | None, severity: str
) -> None:
    assert (
        classify_error(code, client_event_type=client_type, configured=configured, param=param)
        == severity
    )


# --- responses -------------------------------------------------------------------------------
def test_active_response_tracks_the_default_conversation_only() -> None:
    rt = at(Phase.CONFIGURED)
    rt.receive(frame("response.created", response={"id": "r1", "conversation_id": "conv_1"}))
    assert rt.active_response_id == "r1"
    # An out-of-band response (conversation "none") runs beside it.
    rt.receive(frame("response.created", response={"id": "oob", "conversation_id": None}))
    assert rt.active_response_id == "r1"
    rt.receive(frame("response.done", response={"id": "oob", "status": "completed"}))
    assert rt.active_response_id == "r1"
    rt.receive(frame("response.done", response={"id": "r1", "status": "cancelled"}))
    assert rt.active_response_id is None
    assert rt.counters["responses"] == 2


def test_response_without_conversation_id_field_counts_as_default() -> None:
    rt = at(Phase.CONFIGURED)
    rt.receive(frame("response.created", response={"id": "r1"}))
    assert rt.active_response_id == "r1"


# --- audio accounting and truncation -----------------------------------------------------------
def _delta(item: str, data: bytes, response_id: str = "r1", ci: int = 0) -> str:
    return frame(
        "response.output_audio.delta",
        response_id=response_id,
        item_id=item,
        output_index=0,
        content_index=ci,
        delta=base64.b64encode(data).decode(),
    )


@pytest.mark.parametrize(
    ("fmt", "rate", "bytes_per_ms"),
    [(PCM, 24000, 48), (PCMU, 8000, 8), ({"type": "audio/pcma"}, 8000, 8)],
)
def test_audio_received_ms_uses_the_output_format(
    fmt: dict[str, Any], rate: int, bytes_per_ms: int
) -> None:
    rt = at(Phase.CONFIGURED, out_fmt=fmt)
    speech = synthesize("barge in test", rate)
    if bytes_per_ms == 8:
        speech = speech[: len(speech) // 2]  # 1 byte per sample, same duration arithmetic
    total = 0
    for i in range(0, 10 * bytes_per_ms * 20, bytes_per_ms * 20):  # ten 20 ms chunks
        chunk = speech[i : i + bytes_per_ms * 20]
        rt.receive(_delta("item_a", chunk))
        total += len(chunk)
    assert rt.audio_received_ms("item_a") == total // bytes_per_ms == 200
    assert rt.counters["audio_bytes_in"] == total
    assert rt.audio_received_ms("item_a", 1) == 0
    assert rt.audio_received_ms("nope") == 0


def test_odd_sized_deltas_are_counted_exactly() -> None:
    rt = at(Phase.CONFIGURED, out_fmt=PCM)
    sizes = [1, 2, 3, 4, 5, 479, 961]
    for n in sizes:
        rt.receive(_delta("item_a", synthesize("odd", 24000)[:n]))
    assert rt.counters["audio_bytes_in"] == sum(sizes)
    assert rt.audio_received_ms("item_a") == sum(sizes) * 1000 // 48000


def test_per_response_output_format_override() -> None:
    rt = at(Phase.CONFIGURED, out_fmt=PCM)
    rt.receive(
        frame("response.created", response={"id": "r2", "audio": {"output": {"format": PCMU}}})
    )
    rt.receive(_delta("item_u", b"\x7f" * 800, response_id="r2"))
    assert rt.audio_received_ms("item_u") == 100
    rt.receive(_delta("item_p", b"\x00" * 4800, response_id="r3"))
    assert rt.audio_received_ms("item_p") == 100


def test_clamp_truncate() -> None:
    rt = at(Phase.CONFIGURED, out_fmt=PCMU)
    rt.receive(_delta("item_a", synthesize("clamp", 8000)[:8000]))  # 1000 ms of u-law bytes
    assert rt.audio_received_ms("item_a") == 1000
    t = rt.clamp_truncate("item_a", 0, 640.9)
    assert t == ConversationItemTruncate("item_a", 0, 640)
    assert rt.clamp_truncate("item_a", 0, -5) == ConversationItemTruncate("item_a", 0, 0)
    assert rt.clamp_truncate("item_a", 0, 1000) is None  # playback complete: skip
    assert rt.clamp_truncate("item_a", 0, 1500) is None
    assert rt.clamp_truncate("item_a", 1, 10) is None  # no audio for that part
    assert rt.clamp_truncate("other", 0, 10) is None
    rt.send(t)  # once sent, the item is at most 640 ms long
    assert rt.clamp_truncate("item_a", 0, 700) is None
    assert rt.clamp_truncate("item_a", 0, 600) == ConversationItemTruncate("item_a", 0, 600)


def test_deleted_items_are_forgotten() -> None:
    rt = at(Phase.CONFIGURED, out_fmt=PCMU)
    item = {"id": "item_a", "type": "message", "role": "assistant", "content": []}
    rt.receive(frame("conversation.item.added", item=item))
    rt.receive(_delta("item_a", b"\x01" * 80))
    assert "item_a" in rt.items and rt.audio_received_ms("item_a") == 10
    rt.receive(frame("conversation.item.deleted", item_id="item_a"))
    assert "item_a" not in rt.items and rt.audio_received_ms("item_a") == 0


def test_items_memory_is_bounded() -> None:
    rt = at(Phase.CONFIGURED)
    for n in range(400):
        rt.receive(frame("conversation.item.done", item={"id": f"i{n}", "type": "message"}))
    assert len(rt.items) == 256
    assert "i399" in rt.items and "i0" not in rt.items


def test_counters_count_both_directions() -> None:
    rt = at(Phase.CONFIGURED)
    pcm = synthesize("count me", 24000)[:960]
    b64 = base64.b64encode(pcm).decode()
    rt.send_audio(b64)
    rt.send(InputAudioBufferAppend(b64))
    assert rt.counters["audio_bytes_out"] == 2 * len(pcm)
    assert rt.counters["events_out"] == 3  # session.update + 2 appends
    assert rt.counters["events_in"] == 2  # session.created + session.updated


# --- GA-only guard, format fallback, failed responses ----------------------------------------
@pytest.mark.parametrize(
    ("session", "match"),
    [
        ({"modalities": ["text", "audio"]}, "missing|type"),
        ({"type": "realtime", "modalities": ["text"]}, r"session\.modalities.*output_modalities"),
        ({"type": "realtime", "voice": "alloy"}, r"session\.audio\.output\.voice"),
        ({"type": "realtime", "input_audio_format": "pcm16"}, r"audio\.input\.format"),
        ({"type": "realtime", "temperature": 0.8}, "removed in GA"),
        ({"type": "beta"}, "realtime' or 'transcription"),
    ],
)
def test_beta_shaped_session_update_is_refused_before_sending(
    session: dict[str, Any], match: str
) -> None:
    rt = at(Phase.CREATED)
    with pytest.raises(ValueError, match=match):
        rt.send(SessionUpdate(session))
    assert rt.phase is Phase.CREATED and rt.counters["events_out"] == 0


def test_beta_fields_in_response_create_are_refused() -> None:
    rt = at(Phase.CONFIGURED)
    with pytest.raises(ValueError, match=r"response\.modalities"):
        rt.send(ResponseCreate({"modalities": ["text"]}))
    rt.send(ResponseCreate({"output_modalities": ["text"]}))


def test_requested_output_format_is_used_when_the_echo_lacks_it() -> None:
    rt = at(Phase.CREATED)
    rt.send(SessionUpdate({"type": "realtime", "audio": {"output": {"format": PCMU}}}))
    rt.receive(frame("session.updated", session=session_obj()))
    assert rt.output_format.encoding == "pcmu"
    rt.receive(_delta("item_a", b"\x7f" * 160))
    assert rt.audio_received_ms("item_a") == 20


def test_failed_response_becomes_an_error_notice() -> None:
    rt = at(Phase.CONFIGURED)
    rt.receive(frame("response.created", response={"id": "r1"}))
    failed = {
        "id": "r1",
        "status": "failed",
        "status_details": {
            "type": "failed",
            "error": {
                "type": "server_error",
                "code": "rate_limit_exceeded",
                "message": "slow down",
            },
        },
    }
    _, notice = rt.receive(frame("response.done", response=failed))
    assert notice == ErrorNotice(
        "recoverable", "rate_limit_exceeded", "slow down", None, None, "response.create"
    )
    assert rt.phase is Phase.CONFIGURED and rt.active_response_id is None
    quota = {
        **failed,
        "status_details": {
            "type": "failed",
            "error": {"code": "insufficient_quota", "message": "no quota"},
        },
    }
    _, fatal = rt.receive(frame("response.done", response=quota))
    assert isinstance(fatal, ErrorNotice) and fatal.fatal
    assert rt.phase is Phase.ERROR


def test_cancelled_or_incomplete_responses_are_not_errors() -> None:
    rt = at(Phase.CONFIGURED)
    for status in ("cancelled", "incomplete", "completed"):
        out = rt.receive(frame("response.done", response={"id": "r", "status": status}))
        assert len(out) == 1
    assert rt.counters["errors"] == 0


def test_audio_delta_decodes() -> None:
    pcm = synthesize("decode", 24000)[:960]
    ev = at(Phase.CONFIGURED).receive(_delta("i", pcm))[0]
    assert isinstance(ev, se.ResponseOutputAudioDelta)
    assert ev.audio == pcm


# --- connection loss -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "reason", "retry", "phase", "error"),
    [
        (1000, "", False, Phase.CLOSED, None),
        (1006, "", True, Phase.ERROR, "connection closed (1006)"),
        (
            1011,
            "keepalive ping timeout",
            True,
            Phase.ERROR,
            "connection closed (1011: keepalive ping timeout)",
        ),
        (None, "", True, Phase.ERROR, "connection lost"),
        (4000, "", False, Phase.ERROR, "refused the beta shape"),
        (1008, "policy", False, Phase.ERROR, "connection closed (1008: policy)"),
    ],
)
def test_connection_lost(
    code: int | None, reason: str, retry: bool, phase: Phase, error: str | None
) -> None:
    rt = at(Phase.CONFIGURED)
    assert rt.connection_lost(code, reason) is retry
    assert rt.phase is phase
    if error is None:
        assert rt.last_error is None
    else:
        assert rt.last_error is not None and error in rt.last_error


def test_connection_lost_after_close_or_fatal_error_keeps_the_first_reason() -> None:
    rt = at(Phase.CONFIGURED)
    rt.close()
    assert rt.connection_lost(1006) is False
    assert rt.phase is Phase.CLOSED and rt.last_error is None
    rt = at(Phase.ERROR)
    assert rt.connection_lost(1006) is False
    assert rt.last_error is not None and "session_expired" in rt.last_error


def test_send_of_an_append_checks_the_audio_like_send_audio() -> None:
    rt = at(Phase.CONFIGURED)
    with pytest.raises(ValueError, match="base64"):
        rt.send(InputAudioBufferAppend('AA"}'))
    assert rt.counters["events_out"] == 1  # only the session.update
    text = rt.send(InputAudioBufferAppend("AAAA", event_id="a1"))
    assert json.loads(text) == {
        "type": "input_audio_buffer.append",
        "event_id": "a1",
        "audio": "AAAA",
    }
