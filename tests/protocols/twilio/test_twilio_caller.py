"""The caller role (Twilio's end), and round trips between the two roles for every message.

https://www.twilio.com/docs/voice/media-streams/websocket-messages
"""

from __future__ import annotations

import base64
import binascii
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from twilio_ends import ACCOUNT, CALL, PARAMS, SID, SILENCE, start_caller, streaming_pair

from foreman.exceptions import InvalidState, SessionClosed
from foreman.protocols.twilio import (
    Connected,
    Dtmf,
    MarkEcho,
    Media,
    Rejected,
    ServerClear,
    ServerMark,
    ServerMedia,
    Start,
    Stop,
    Tolerated,
    TwilioCallerStream,
    TwilioStream,
)

TONE = bytes.fromhex("FFA9A0A9FF292029") * 20


def test_round_trip_every_twilio_message_to_the_server() -> None:
    caller, server = TwilioCallerStream(), TwilioStream()
    assert server.receive(caller.connected()) == [Connected("Call", "1.0.0")]
    assert server.receive(start_caller(caller)) == [
        Start(SID, CALL, ACCOUNT, ("inbound",), PARAMS, "audio/x-mulaw", 8000, 1)
    ]
    assert server.receive(caller.media(SILENCE, 0)) == [
        Media(base64.b64encode(SILENCE).decode(), 1, 0, "inbound")
    ]
    (tone,) = server.receive(caller.media(TONE, 20))
    assert isinstance(tone, Media) and (tone.payload, tone.chunk, tone.timestamp) == (TONE, 2, 20)
    caller.receive(server.mark("m1"))
    assert server.receive(caller.mark("m1")) == [MarkEcho("m1")]
    assert server.receive(caller.dtmf("#")) == [Dtmf("#")]
    assert server.receive(caller.stop()) == [Stop(CALL)]
    assert (caller.phase, server.phase) == ("stopped", "stopped")
    counters = server.counters
    assert (counters["bad"], counters["unknown"], counters["sequence_gaps"]) == (0, 0, 0)
    assert (counters["media_in"], counters["input_gaps"]) == (2, 0)


def test_round_trip_every_server_message_to_the_caller() -> None:
    caller, server = streaming_pair()
    (media,) = caller.receive(server.media_bytes(TONE))
    assert media == ServerMedia(base64.b64encode(TONE).decode(), TONE)
    assert isinstance(media, ServerMedia) and media.raw["streamSid"] == SID
    assert caller.receive(server.mark('we"ird')) == [ServerMark('we"ird')]
    assert caller.receive(server.clear()) == [ServerClear()]
    assert caller.pending_marks == 1
    assert caller.counters["rejected"] == 0 and caller.counters["tolerated"] == 0
    assert (server.counters["media_out"], server.counters["marks_out"]) == (1, 1)


def test_caller_frames_have_twilios_documented_shapes() -> None:
    caller, server = TwilioCallerStream(), TwilioStream()
    assert json.loads(caller.connected()) == {
        "event": "connected",
        "protocol": "Call",
        "version": "1.0.0",
    }
    start = start_caller(caller)
    server.receive(start)
    assert json.loads(start) == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": SID,
            "callSid": CALL,
            "tracks": ["inbound"],
            "customParameters": PARAMS,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": SID,
    }
    assert json.loads(caller.media(SILENCE, 0)) == {
        "event": "media",
        "sequenceNumber": "2",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "0",
            "payload": base64.b64encode(SILENCE).decode(),
        },
        "streamSid": SID,
    }
    assert json.loads(caller.dtmf("5")) == {
        "event": "dtmf",
        "streamSid": SID,
        "sequenceNumber": "3",
        "dtmf": {"track": "inbound_track", "digit": "5"},
    }
    caller.receive(server.mark("m1"))
    assert json.loads(caller.mark("m1")) == {
        "event": "mark",
        "sequenceNumber": "4",
        "streamSid": SID,
        "mark": {"name": "m1"},
    }
    assert json.loads(caller.media(SILENCE, 20))["media"]["chunk"] == "2"
    assert json.loads(caller.stop()) == {
        "event": "stop",
        "sequenceNumber": "6",
        "stop": {"accountSid": ACCOUNT, "callSid": CALL},
        "streamSid": SID,
    }


def test_start_needs_sids_and_a_sid_that_needs_escaping_stays_valid_json() -> None:
    caller = TwilioCallerStream()
    caller.connected()
    with pytest.raises(ValueError, match="stream_sid"):
        caller.start(stream_sid="", call_sid=CALL, account_sid=ACCOUNT)
    assert caller.phase == "connected"
    caller.start(stream_sid='MZ"\\é', call_sid=CALL, account_sid=ACCOUNT)
    assert json.loads(caller.media(SILENCE, 0))["streamSid"] == 'MZ"\\é'


def test_media_arguments_are_checked() -> None:
    caller, _ = streaming_pair()
    caller.media(SILENCE, 40)
    with pytest.raises(ValueError, match="before 40"):
        caller.media(SILENCE, 20)
    with pytest.raises(ValueError, match="empty"):
        caller.media(b"", 60)
    assert caller.counters["media_out"] == 1


def test_a_mark_is_echoed_only_once_per_mark_received() -> None:
    caller, server = streaming_pair()
    with pytest.raises(InvalidState, match=r"cannot send mark in phase 'streaming' \(no mark"):
        caller.mark("never-sent")
    caller.receive(server.mark("m1"))
    caller.receive(server.mark("m1"))
    assert caller.pending_marks == 2
    caller.mark("m1")
    caller.mark("m1")
    with pytest.raises(InvalidState, match="'m1'"):
        caller.mark("m1")
    assert caller.pending_marks == 0 and caller.counters["marks_out"] == 2


def test_dtmf_keys_only_and_nothing_after_stop() -> None:
    caller, _ = streaming_pair()
    with pytest.raises(ValueError, match="DTMF"):
        caller.dtmf("55")
    caller.stop()
    for send in (lambda: caller.dtmf("55"), lambda: caller.media(SILENCE, 0), caller.stop):
        with pytest.raises(SessionClosed, match="the stream has ended"):
            send()


def _server_frame(**fields: object) -> str:
    return json.dumps({"event": "media", "streamSid": SID, **fields})


FRAME_B64 = base64.b64encode(SILENCE).decode()
REJECTED = [
    (b"\x00\x01", 31950, "binary frame of 2 bytes"),
    ("not json {", 31951, "not JSON"),
    ("[1]", 31951, "not a JSON object"),
    (json.dumps({"event": "hello", "streamSid": SID}), 31951, "unknown event 'hello'"),
    (json.dumps({"streamSid": SID}), 31951, "unknown event None"),
    (_server_frame(media={"payload": FRAME_B64}, streamSid="MZwrong"), 31951, "wrong streamSid"),
    (_server_frame(media={"payload": FRAME_B64, "track": "outbound"}), 31951, "media.media"),
    (_server_frame(playload={"payload": FRAME_B64}), 31951, "fields"),
    (_server_frame(media={"payload": "not base64!"}), 31951, "not base64"),
    (_server_frame(media={"payload": "ab=c"}), 31951, "not base64"),
    (_server_frame(media={"payload": 5}), 31951, "not base64"),
    (json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": ""}}), 31951, "mark.name"),
    (json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": 3}}), 31951, "mark.name"),
    (json.dumps({"event": "mark", "streamSid": SID, "mark": {}}), 31951, "mark.mark"),
    (json.dumps({"event": "clear", "streamSid": SID, "extra": 1}), 31951, "fields"),
    (json.dumps({"event": "clear"}), 31951, "fields"),
    (json.dumps({"event": "clear", "streamSid": "MZ" + "2" * 32}), 31951, "wrong streamSid"),
    (json.dumps({"event": "connected", "protocol": "Call"}), 31951, "unknown event 'connected'"),
]


@pytest.mark.parametrize(("frame", "code", "problem"), REJECTED)
def test_what_twilio_rejects_is_reported_and_counted(
    frame: str | bytes, code: int, problem: str
) -> None:
    caller, _ = streaming_pair()
    (rejected,) = caller.receive(frame)
    assert isinstance(rejected, Rejected) and rejected.code == code
    assert any(problem in p for p in rejected.problems), rejected.problems
    assert all(f"({code})" in p for p in rejected.problems)
    assert caller.counters["rejected"] == 1 and caller.phase == "streaming"
    assert caller.pending_marks == 0
    assert (rejected.raw is None) == (not isinstance(frame, str) or frame[0] != "{")


def test_every_broken_rule_of_a_message_is_listed() -> None:
    caller = TwilioCallerStream()
    frame = json.dumps({"event": "clear", "streamSid": "MZx", "extra": 1})
    (before_start,) = caller.receive(frame)
    assert isinstance(before_start, Rejected)
    assert before_start.problems[0] == "clear sent before start"
    assert "fields" in before_start.problems[1] and len(before_start.problems) == 2
    caller, _ = streaming_pair()
    (rejected,) = caller.receive(frame)
    assert isinstance(rejected, Rejected) and len(rejected.problems) == 2
    assert "fields" in rejected.problems[0] and "streamSid" in rejected.problems[1]


def test_audio_that_is_not_whole_frames_is_played_with_a_note() -> None:
    caller, server = streaming_pair()
    events = caller.receive(server.media_bytes(b"\xff" * 100))
    assert events == [
        Tolerated("media payload of 100 bytes is not whole 160-byte frames"),
        ServerMedia(base64.b64encode(b"\xff" * 100).decode(), b"\xff" * 100),
    ]
    assert caller.counters["tolerated"] == 1 and caller.counters["media_in"] == 1


@given(st.text(min_size=1, max_size=60))
@example("////" * 53 + "/w==")
@example("ab=c")
@example("é" * 4)
def test_the_caller_plays_exactly_the_payloads_that_are_strict_base64(payload: str) -> None:
    caller, server = streaming_pair()
    try:
        audio: bytes | None = binascii.a2b_base64(payload, strict_mode=True)
    except ValueError:
        audio = None
    events = caller.receive(server.media(payload))
    if audio is None:
        assert [type(e) for e in events] == [Rejected]
    else:
        assert events[-1] == ServerMedia(payload, audio)


@given(st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=5))
def test_any_caller_audio_reaches_the_server_unchanged(chunks: list[bytes]) -> None:
    caller, server = streaming_pair()
    for i, chunk in enumerate(chunks):
        (event,) = server.receive(caller.media(chunk, 20 * i))
        assert isinstance(event, Media)
        assert (event.payload, event.chunk, event.timestamp) == (chunk, i + 1, 20 * i)
    assert server.counters["bad"] == 0 and server.counters["sequence_gaps"] == 0
