"""TwilioStream (server role) against Twilio's documented wire shapes and test vectors.

https://www.twilio.com/docs/voice/media-streams/websocket-messages
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import warnings

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from foreman.exceptions import InvalidState, SessionClosed
from foreman.protocols.realtime.parser import encode_audio_append
from foreman.protocols.twilio import (
    BadMessage,
    Connected,
    Dtmf,
    MarkEcho,
    Media,
    Start,
    Stop,
    TwilioStream,
    Unknown,
)

SID = "MZf7b44cfafd5c52223d5498196c8a2e7b"
CALL = "CA53b9e9679a8ea25880376080b76f98ad"
ACCOUNT = "AC4c122831efef10ac68b5223dccd6f614"
SILENCE_B64 = "////" * 53 + "/w=="
TONE_B64 = (
    "/6mgqf8pICn/qaCp/ykgKf+poKn/KSAp/6mgqf8pICn/qaCp/ykgKf+poKn/KSAp/6mgqf8pICn/qaCp/ykgKf+poKn/"
    "KSAp/6mgqf8pICn/qaCp/ykgKf+poKn/KSAp/6mgqf8pICn/qaCp/ykgKf+poKn/KSAp/6mgqf8pICn/qaCp/ykgKf+p"
    "oKn/KSAp/6mgqf8pICn/qaCp/ykgKQ=="
)

CONNECTED = '{"event":"connected","protocol":"Call","version":"1.0.0"}'
START = json.dumps(
    {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": SID,
            "callSid": CALL,
            "tracks": ["inbound"],
            "customParameters": {"session": "s_8f2c1d", "caller": "+14155550100"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": SID,
    }
)


def media(seq: int, chunk: int, ts: int, payload: str, sid: str = SID) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(ts),
                "payload": payload,
            },
            "streamSid": sid,
        }
    )


def started() -> TwilioStream:
    s = TwilioStream()
    s.receive(CONNECTED)
    s.receive(START)
    return s


def test_payload_vectors_silence_and_tone() -> None:
    assert len(SILENCE_B64) == 216 and len(TONE_B64) == 216
    s = started()
    (silence,) = s.receive(media(2, 1, 0, SILENCE_B64))
    assert isinstance(silence, Media)
    assert silence.payload == b"\xff" * 160
    assert silence.payload_b64 is not None and silence.payload_b64 == SILENCE_B64
    assert silence.duration_ms == 20.0
    (tone,) = s.receive(media(3, 2, 20, TONE_B64))
    assert isinstance(tone, Media)
    assert tone.payload == bytes.fromhex("FFA9A0A9FF292029") * 20
    assert hashlib.sha256(tone.payload).hexdigest() == (
        "db13fe88c62aa5ccd03dee93d192fa625ab8710bc0b8eeba09af50088398e022"
    )
    assert (tone.chunk, tone.timestamp, tone.track) == (2, 20, "inbound")


# µ-law codes and what they decode to (ITU-T G.711).
CODEC = [
    ("00", -32124),
    ("0F", -16764),
    ("20", -7932),
    ("29", -5628),
    ("4D", -1052),
    ("72", -104),
    ("7E", -8),
    ("7F", 0),
    ("FF", 0),
    ("FE", 8),
    ("F2", 104),
    ("CD", 1052),
    ("A9", 5628),
    ("A0", 7932),
    ("8F", 16764),
    ("80", 32124),
]


def test_codec_vectors_survive_the_wire_both_ways() -> None:
    ulaw = bytes.fromhex("".join(code for code, _ in CODEC)) * 10  # 160 bytes
    s = started()
    out = json.loads(s.media_bytes(ulaw))
    assert out == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": out["media"]["payload"]},
    }
    (event,) = s.receive(media(2, 1, 0, out["media"]["payload"]))
    assert isinstance(event, Media) and event.payload == ulaw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    decoded = memoryview(audioop.ulaw2lin(event.payload[:16], 2)).cast("h").tolist()
    assert decoded == [value for _, value in CODEC]


def test_synthetic_call_connected_to_stop() -> None:
    s = TwilioStream()
    assert s.phase == "waiting"
    assert s.receive(CONNECTED) == [Connected("Call", "1.0.0")]
    (start,) = s.receive(START)
    assert isinstance(start, Start)
    assert start == Start(
        SID,
        CALL,
        ACCOUNT,
        ("inbound",),
        {"session": "s_8f2c1d", "caller": "+14155550100"},
        "audio/x-mulaw",
        8000,
        1,
    )
    assert (s.phase, s.stream_sid, s.call_sid) == ("streaming", SID, CALL)
    assert s.custom_parameters == {"session": "s_8f2c1d", "caller": "+14155550100"}
    forwarded: list[str] = []
    for i in range(57):
        payload = SILENCE_B64 if i % 2 == 0 else TONE_B64
        for ev in s.receive(media(i + 2, i + 1, 20 * i, payload)):
            assert isinstance(ev, Media)
            assert ev.payload_b64 is payload or ev.payload_b64 == payload
            forwarded.append(ev.payload_b64)
    assert len(forwarded) == 57
    # The outgoing side works while streaming.
    assert json.loads(s.mark("m1")) == {"event": "mark", "streamSid": SID, "mark": {"name": "m1"}}
    assert s.receive(
        json.dumps(
            {"event": "mark", "sequenceNumber": "59", "streamSid": SID, "mark": {"name": "m1"}}
        )
    ) == [MarkEcho("m1")]
    dtmf = {
        "event": "dtmf",
        "streamSid": SID,
        "sequenceNumber": "60",
        "dtmf": {"track": "inbound_track", "digit": "#"},
    }
    assert s.receive(json.dumps(dtmf)) == [Dtmf("#")]
    stop = {
        "event": "stop",
        "sequenceNumber": "61",
        "stop": {"accountSid": ACCOUNT, "callSid": CALL},
        "streamSid": SID,
    }
    assert s.receive(json.dumps(stop)) == [Stop(CALL)]
    assert s.phase == "stopped"
    assert s.counters["media_in"] == 57 and s.counters["sequence_gaps"] == 0
    # Nothing is sent after stop (the caller hung up: an ordinary end, not our bug); anything
    # received is dropped.
    for send in (lambda: s.media(SILENCE_B64), lambda: s.mark("x"), s.clear):
        with pytest.raises(SessionClosed, match="the stream has ended"):
            send()
    assert s.receive(media(62, 58, 1160, SILENCE_B64)) == []
    assert s.counters["dropped_after_stop"] == 1


def test_garbage_before_start_is_reported_and_dropped() -> None:
    s = TwilioStream()
    (binary,) = s.receive(b"\x00\x01binary")
    assert isinstance(binary, BadMessage) and "binary" in binary.reason
    (bad,) = s.receive("this is not json {")
    assert isinstance(bad, BadMessage) and not bad.fatal and "JSON" in bad.reason
    (unknown,) = s.receive('{"event":"unknown"}')
    assert isinstance(unknown, Unknown) and unknown.event == "unknown"
    assert s.receive(media(2, 1, 0, SILENCE_B64)) == []  # media before start: dropped
    assert s.receive('{"event":"mark","mark":{"name":"m"}}') == []
    for junk in ("[]", "42", '{"event": 5}', "null", ""):
        (ev,) = s.receive(junk)
        assert isinstance(ev, BadMessage)
    assert s.counters["dropped_before_start"] == 2
    assert s.counters["unknown"] == 1
    assert s.counters["bad"] == 1 + 1 + 5
    # The stream still works afterwards.
    s.receive(START)
    assert s.phase == "streaming"
    with pytest.raises(InvalidState):
        TwilioStream().media(SILENCE_B64)


def test_malformed_frames_after_start_do_not_stop_the_stream() -> None:
    s = started()
    bad_frames = [
        media(2, 1, 0, SILENCE_B64, sid="MZother"),  # wrong streamSid
        media(3, "x", 0, SILENCE_B64),  # type: ignore[arg-type]
        media(4, 1, 0, "abc"),  # not base64-shaped
        json.dumps({"event": "media", "streamSid": SID}),
        json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "55"}}),
        json.dumps({"event": "mark", "streamSid": SID, "mark": {}}),
        START,  # a second start
    ]
    for frame in bad_frames:
        (ev,) = s.receive(frame)
        assert isinstance(ev, BadMessage) and not ev.fatal, frame
    assert s.phase == "streaming"
    assert isinstance(s.receive(media(9, 2, 20, SILENCE_B64))[0], Media)


def test_start_with_another_media_format_is_fatal() -> None:
    msg = json.loads(START)
    msg["start"]["mediaFormat"] = {"encoding": "audio/x-alaw", "sampleRate": 8000, "channels": 1}
    s = TwilioStream()
    (ev,) = s.receive(json.dumps(msg))
    assert isinstance(ev, BadMessage) and ev.fatal and "mediaFormat" in ev.reason
    assert s.phase == "waiting" and s.stream_sid is None
    msg["start"]["mediaFormat"] = {
        "encoding": "audio/x-mulaw",
        "sampleRate": "16000",
        "channels": 1,
    }
    (ev,) = s.receive(json.dumps(msg))
    assert isinstance(ev, BadMessage) and ev.fatal
    del msg["start"]["callSid"]
    (ev,) = s.receive(json.dumps(msg))
    assert isinstance(ev, BadMessage) and ev.fatal and "callSid" in ev.reason


def test_start_without_connected_and_with_empty_parameters() -> None:
    msg = json.loads(START)
    msg["start"]["customParameters"] = {}
    s = TwilioStream()
    (ev,) = s.receive(json.dumps(msg))
    assert isinstance(ev, Start) and ev.custom_parameters == {}


def test_outbound_message_shapes() -> None:
    s = started()
    assert json.loads(s.media(TONE_B64)) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": TONE_B64},
    }
    assert json.loads(s.clear()) == {"event": "clear", "streamSid": SID}
    assert json.loads(s.mark('we"ird')) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": 'we"ird'},
    }
    assert base64.b64decode(json.loads(s.media_bytes(b"\xff" * 320))["media"]["payload"]) == (
        b"\xff" * 320
    )
    with pytest.raises(ValueError):
        s.mark("")
    with pytest.raises(ValueError):
        s.media("")
    assert (s.counters["media_out"], s.counters["marks_out"], s.counters["clears_out"]) == (2, 1, 1)


def test_sequence_gaps_are_counted_not_dropped() -> None:
    s = started()
    s.receive(media(2, 1, 0, SILENCE_B64))
    (ev,) = s.receive(media(5, 2, 20, SILENCE_B64))
    assert isinstance(ev, Media)
    assert s.counters["sequence_gaps"] == 1


@pytest.mark.parametrize("frame", ["not json", b"\x00binary", "[1]", '{"event": "start"}'])
def test_after_stop_even_garbage_is_dropped_and_counted(frame: str | bytes) -> None:
    s = started()
    s.receive(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
    bad = s.counters["bad"]
    assert s.receive(frame) == []
    assert s.counters["bad"] == bad and s.counters["dropped_after_stop"] == 1


def test_connection_lost_without_stop() -> None:
    s = started()
    s.connection_lost()
    assert s.phase == "stopped"
    with pytest.raises(SessionClosed):
        s.clear()


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_receive_never_raises_on_arbitrary_input(frame: str | bytes) -> None:
    s = started()
    for ev in s.receive(frame):
        assert isinstance(ev, BadMessage | Unknown | Connected | Media | MarkEcho | Dtmf | Stop)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.sampled_from(["start", "media", "mark", "dtmf", "stop", "connected", "x"]),
    st.dictionaries(
        st.sampled_from(["start", "media", "mark", "dtmf", "stop", "streamSid", "sequenceNumber"]),
        JSONISH,
        max_size=4,
    ),
)
def test_receive_never_raises_on_structured_junk(event: str, body: dict[str, object]) -> None:
    for s in (TwilioStream(), started()):
        s.receive(json.dumps({"event": event, **body}))


@given(st.text(min_size=1, max_size=50))
def test_media_payload_is_never_injected_into_the_json(payload: str) -> None:
    s = started()
    assert json.loads(s.media(payload)) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": payload},
    }


def test_start_is_hashable_despite_its_parameter_dict() -> None:
    (start,) = TwilioStream().receive(START)
    assert isinstance(start, Start)
    assert hash(start) == hash(start)


def test_deeply_nested_or_huge_json_is_a_bad_message() -> None:
    s = started()
    for junk in ("[" * 100_000 + "]" * 100_000, '{"event":"media","x":' + "1" * 5000 + "}"):
        (ev,) = s.receive(junk)
        assert isinstance(ev, BadMessage)
    huge_seq = media(2, 1, 0, SILENCE_B64).replace(
        '"sequenceNumber": "2"', '"sequenceNumber": "' + "9" * 5000 + '"'
    )
    assert isinstance(s.receive(huge_seq)[0], Media)


def test_input_gap_is_reported_in_whole_frames() -> None:
    s = started()
    events = [
        s.receive(media(2, 1, 1000, SILENCE_B64))[0],
        s.receive(media(3, 2, 1020, SILENCE_B64))[0],
        s.receive(media(4, 3, 1100, SILENCE_B64))[0],
        s.receive(media(5, 4, 1125, SILENCE_B64))[0],  # 5 ms of jitter is not a gap
    ]
    assert [e.gap_ms for e in events if isinstance(e, Media)] == [0, 0, 60, 0]
    assert s.counters["input_gaps"] == 1


@given(st.text(max_size=40).map(lambda tail: SILENCE_B64[: 216 - len(tail)] + tail))
@example("////" * 53 + "/w=!")  # right length, a character outside the alphabet
@example("////" * 53 + "-_w=")  # the URL-safe alphabet
@example("////" * 53 + "/w=" + "é")  # non-ASCII
@example("////" * 53 + "=w/=")  # padding inside the payload
@example("////" * 53 + "/===")  # too much padding
def test_media_payload_that_is_not_base64_is_a_bad_message(payload: str) -> None:
    """Whatever comes back as Media can be forwarded to the model (the Realtime encoder's own
    check) and decoded strictly; the rest is a BadMessage, never an exception later."""
    s = started()
    (event,) = s.receive(media(2, 1, 0, payload))
    if isinstance(event, Media):
        assert encode_audio_append(event.payload_b64)
        assert binascii.a2b_base64(event.payload_b64, strict_mode=True) == event.payload
    else:
        assert isinstance(event, BadMessage) and not event.fatal
        assert "'payload' is not base64" in event.reason
        assert s.counters["bad"] == 1 and s.phase == "streaming"


INPUTS = {
    "start": lambda s: s.receive(START),
    "media": lambda s: s.receive(media(9, 1, 0, SILENCE_B64)),
    "stop": lambda s: s.receive('{"event":"stop","stop":{"callSid":"CA1"}}'),
    "connection_lost": lambda s: s.connection_lost(),
}


@given(st.lists(st.sampled_from(sorted(INPUTS)), max_size=5))
@example([])  # before start: our bug
@example(["start", "stop"])  # the caller hung up while audio was going out
@example(["start", "connection_lost"])  # the socket dropped without stop
def test_sending_before_start_is_a_bug_and_after_the_end_a_hang_up(inputs: list[str]) -> None:
    s = TwilioStream()
    for name in inputs:
        INPUTS[name](s)
    for send in (lambda: s.media(SILENCE_B64), lambda: s.mark("m"), s.clear):
        if s.phase == "waiting":
            with pytest.raises(InvalidState, match=r"TwilioStream\(server\).*'waiting'"):
                send()
        elif s.phase == "stopped":
            with pytest.raises(SessionClosed, match="the stream has ended"):
                send()
        else:
            assert json.loads(send())["streamSid"] == SID
