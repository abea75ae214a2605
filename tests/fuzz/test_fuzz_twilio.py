"""Slow run: the Twilio Media Streams parsers for both ends, 10,000 examples each.

Whatever Twilio (or an attacker holding a media socket) sends, the server role never raises,
moves only forward through its phases, and hands on nothing a later stage could choke on: a
`Media` payload is always base64 the Realtime encoder accepts. Whatever the server sends,
Twilio's role judges it without raising, and everything the server role builds is accepted.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json

import pytest
from fuzz_strategies import FUZZ, JSONISH, TWILIO_FRAMES, TWILIO_START, WEIRD_TEXT
from hypothesis import given
from hypothesis import strategies as st

from foreman.exceptions import InvalidState, SessionClosed
from foreman.protocols.realtime.parser import encode_audio_append
from foreman.protocols.twilio.caller import TwilioCallerStream
from foreman.protocols.twilio.messages import (
    BadMessage,
    Media,
    Rejected,
    ServerMark,
    ServerMedia,
    Start,
    Stop,
)
from foreman.protocols.twilio.stream import TwilioStream

pytestmark = pytest.mark.slow

ORDER = {"waiting": 0, "streaming": 1, "stopped": 2}
GOOD_START = TwilioCallerStream()
GOOD_START.connected()
GOOD_START_FRAME = GOOD_START.start(
    stream_sid="MZ" + "1" * 32, call_sid="CA" + "1" * 32, account_sid="AC" + "1" * 32
)


@FUZZ
@given(st.lists(TWILIO_FRAMES, max_size=30), st.booleans())
def test_the_server_role_survives_any_frames(frames: list[str | bytes], started: bool) -> None:
    stream = TwilioStream()
    if started:
        stream.receive(GOOD_START_FRAME)
    fed = int(started)
    for frame in frames:
        before = stream.phase
        events = stream.receive(frame)
        fed += 1
        assert ORDER[stream.phase] >= ORDER[before]
        if before == "stopped":
            assert events == []
        for event in events:
            if isinstance(event, Media):
                raw = base64.b64decode(event.payload_b64, validate=True)
                assert encode_audio_append(event.payload_b64)  # the model side takes it as is
                assert event.duration_ms == len(raw) / 8 and event.gap_ms >= 0
                assert stream.phase == "streaming"
            elif isinstance(event, Start):
                assert all(
                    isinstance(k, str) and isinstance(v, str)
                    for k, v in event.custom_parameters.items()
                )
            elif isinstance(event, BadMessage):
                assert event.reason and "\n" not in event.reason
            elif isinstance(event, Stop):
                assert stream.phase == "stopped"
    assert stream.counters["frames_in"] == fed
    assert all(v >= 0 for v in stream.counters.values())


@FUZZ
@given(TWILIO_START.map(json.dumps))
def test_a_start_is_either_accepted_whole_or_fatal(frame: str) -> None:
    stream = TwilioStream()
    events = stream.receive(frame)
    starts = [e for e in events if isinstance(e, Start)]
    if starts:
        assert stream.phase == "streaming" and stream.stream_sid == starts[0].stream_sid
    else:
        assert stream.phase == "waiting"
        assert all(isinstance(e, BadMessage) and e.fatal for e in events)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("media"), st.binary(min_size=1, max_size=800)),
            st.tuples(st.just("mark"), WEIRD_TEXT.filter(bool)),
            st.tuples(st.just("clear"), st.none()),
        ),
        max_size=20,
    )
)
def test_everything_the_server_role_sends_twilio_accepts(
    sends: list[tuple[str, bytes | str | None]],
) -> None:
    twilio = TwilioCallerStream()
    twilio.connected()
    start = twilio.start(
        stream_sid="MZ" + "3" * 32, call_sid="CA" + "3" * 32, account_sid="AC" + "3" * 32
    )
    server = TwilioStream()
    server.receive(start)
    for kind, arg in sends:
        if kind == "media":
            assert isinstance(arg, bytes)
            frame = server.media_bytes(arg)
        elif kind == "mark":
            assert isinstance(arg, str)
            frame = server.mark(arg)
        else:
            frame = server.clear()
        got = twilio.receive(frame)
        assert not [e for e in got if isinstance(e, Rejected)], (frame[:200], got)
        if kind == "media":
            assert any(isinstance(e, ServerMedia) and e.audio == arg for e in got)
        if kind == "mark":
            assert any(isinstance(e, ServerMark) and e.name == arg for e in got)


@FUZZ
@given(st.lists(TWILIO_FRAMES, max_size=10), st.lists(st.binary(max_size=400), max_size=5))
def test_sending_after_anything_raises_only_the_documented_errors(
    frames: list[str | bytes], audio: list[bytes]
) -> None:
    stream = TwilioStream()
    for frame in frames:
        stream.receive(frame)
    sends = [functools.partial(stream.mark, "m"), stream.clear]
    for chunk in audio:
        for send in (functools.partial(stream.media_bytes, chunk), *sends):
            with contextlib.suppress(InvalidState, SessionClosed, ValueError):
                assert isinstance(json.loads(send()), dict)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.text(max_size=300),
            st.binary(max_size=100),
            st.fixed_dictionaries(
                {"event": st.sampled_from(["media", "mark", "clear"]) | WEIRD_TEXT},
                optional={
                    "streamSid": st.just("MZ" + "1" * 32) | WEIRD_TEXT,
                    "media": st.fixed_dictionaries({}, optional={"payload": WEIRD_TEXT | JSONISH}),
                    "mark": st.fixed_dictionaries({}, optional={"name": WEIRD_TEXT | JSONISH}),
                    "extra": JSONISH,
                },
            ).map(json.dumps),
        ),
        max_size=20,
    )
)
def test_twilios_role_judges_any_server_frame_without_raising(frames: list[str | bytes]) -> None:
    twilio = TwilioCallerStream()
    twilio.connected()
    twilio.start(stream_sid="MZ" + "1" * 32, call_sid="CA" + "1" * 32, account_sid="AC" + "1" * 32)
    for frame in frames:
        for event in twilio.receive(frame):
            if isinstance(event, Rejected):
                assert event.code in (31950, 31951) and event.problems
            elif isinstance(event, ServerMedia):
                assert base64.b64decode(event.payload_b64, validate=True) == event.audio
