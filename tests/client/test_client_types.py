"""Decoding the control API's JSON into records, rendering errors, and the client's handling
of answers the real server does not give today (new fields, new piece kinds, broken
streams), served through httpx's MockTransport."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from foreman import client_types
from foreman.client import (
    ApiError,
    Audio,
    CallList,
    ConnectionFailed,
    Delta,
    Done,
    ForemanClient,
    RealtimeStatus,
    SayPiece,
    StartOptions,
    ToolNotice,
    UnexpectedResponse,
)
from foreman.client_types import describe_detail, read_say_piece, wire

STATUS = {
    "active": True,
    "mode": "voice",
    "model": "gpt-realtime-2.1",
    "since": "2026-01-01T00:00:00Z",
    "last_error": None,
    "transport": "websocket",
    "endpoint_host": "127.0.0.1:9100",
    "session_id": "sess_1",
    "counters": {"events_in": 7, "audio_ms": 12.5},
    "calls": 0,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
known = {f.name for f in dataclasses.fields(RealtimeStatus)} | {"raw"}


@given(st.dictionaries(st.text().filter(lambda k: k not in known), json_values, max_size=5))
def test_unknown_fields_are_ignored_and_kept_in_raw(extra: dict[str, Any]) -> None:
    status = RealtimeStatus.from_json({**STATUS, **extra})
    assert status == RealtimeStatus.from_json(STATUS)
    assert status.raw == {**STATUS, **extra}


def test_fields_are_typed() -> None:
    status = RealtimeStatus.from_json(STATUS)
    assert status.counters == {"events_in": 7, "audio_ms": 12.5}
    assert isinstance(status.counters["events_in"], int)
    with pytest.raises(UnexpectedResponse, match=r"^RealtimeStatus: the server sent no 'mode'$"):
        RealtimeStatus.from_json({"active": False})
    with pytest.raises(UnexpectedResponse, match=r"RealtimeStatus\.active: expected bool, got"):
        RealtimeStatus.from_json({**STATUS, "active": "yes"})
    with pytest.raises(UnexpectedResponse, match=r"RealtimeStatus\.counters\.x: expected"):
        RealtimeStatus.from_json({**STATUS, "counters": {"x": "many"}})
    with pytest.raises(UnexpectedResponse, match="expected a JSON object"):
        RealtimeStatus.from_json([STATUS])


def test_nested_records_and_json_names_that_are_not_python_names() -> None:
    calls = CallList.from_json(
        {
            "active": [{"call_sid": "CA1", "from": "+15550000001", "stats": {"media_in": 3}}],
            "recent": [{"call_sid": "CA0", "from": "+15550000002", "ended_at": 5}],
        }
    )
    assert calls.active[0].from_ == "+15550000001" and calls.active[0].stats["media_in"] == 3
    assert calls.recent[0].from_ == "+15550000002" and calls.recent[0].ended_at == 5.0
    with pytest.raises(UnexpectedResponse, match=r"CallList\.recent\[0\]: the server sent no"):
        CallList.from_json({"recent": [{"from": "+1"}]})


def test_say_pieces() -> None:
    assert read_say_piece('{"delta": "Hi"}') == Delta("Hi")
    assert read_say_piece('{"tool": "get_time", "call_id": "c1"}') == ToolNotice("get_time", "c1")
    done = read_say_piece('{"done": true, "transcript": "Hi", "status": "closed", "error": "x"}')
    assert done == Done("Hi", "closed", "x") and isinstance(done, Done) and not done.completed
    assert read_say_piece('{"viseme": 3}') is None  # a kind this client does not know
    assert read_say_piece("   ") is None
    with pytest.raises(UnexpectedResponse, match=r"Delta\.delta: expected str"):
        read_say_piece('{"delta": 5}')
    with pytest.raises(UnexpectedResponse, match="not a JSON line"):
        read_say_piece("<html>")


def test_a_new_piece_kind_is_one_class(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class Viseme(SayPiece):
        KEY = "viseme"
        shape: int = dataclasses.field(metadata=wire("viseme"))

    monkeypatch.setattr(client_types, "SAY_PIECES", (*client_types.SAY_PIECES, Viseme))
    assert read_say_piece('{"viseme": 3}') == Viseme(3)


def test_audio_pieces_carry_bytes_format_and_rate() -> None:
    pcm = read_say_piece('{"audio": "AAEC", "format": "pcm16"}')
    assert isinstance(pcm, Audio) and pcm.audio == b"\x00\x01\x02" and pcm.sample_rate == 24000
    ulaw = read_say_piece('{"audio": "/w==", "format": "g711_ulaw"}')
    assert isinstance(ulaw, Audio) and ulaw.audio == b"\xff" and ulaw.sample_rate == 8000
    future = read_say_piece('{"audio": "", "format": "opus"}')
    assert isinstance(future, Audio) and future.sample_rate is None  # kept; the reader decides
    with pytest.raises(UnexpectedResponse, match=r"^Audio\.audio: not base64$"):
        read_say_piece('{"audio": "not base64!", "format": "pcm16"}')


@pytest.mark.parametrize(
    ("detail", "line"),
    [
        ("no active realtime session", "no active realtime session"),
        (
            [
                {"type": "missing", "loc": ["body", "to"], "msg": "Field required"},
                {"type": "x", "loc": ["query", "limit"], "msg": "too big"},
                {"type": "x", "loc": ["body"], "msg": "bad body"},
            ],
            "to: Field required; limit: too big; body: bad body",
        ),
        ({"message": "already approved", "approval": {"id": "a1"}}, "already approved"),
        ({"code": 7}, '{"code": 7}'),
        ("two\nlines", "two lines"),
    ],
)
def test_details_render_as_one_line(detail: object, line: str) -> None:
    assert describe_detail(detail) == line


@given(json_values)
@example([{"loc": True}])  # found by hypothesis: a location that is not a list
def test_any_detail_renders_as_one_short_line(detail: object) -> None:
    line = describe_detail(detail)
    assert "\n" not in line and "\r" not in line and len(line) <= 300


def test_start_options_nest_audio_and_leave_out_what_is_unset() -> None:
    assert StartOptions().to_json() == {}
    assert StartOptions(model="m", in_sr=16000, out_format="g711_ulaw").to_json() == {
        "model": "m",
        "audio": {"in_sr": 16000, "out_format": "g711_ulaw"},
    }


# --- the client against answers the real server does not give (yet) ---------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> ForemanClient:
    return ForemanClient("http://foreman.test", token="", transport=httpx.MockTransport(handler))


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def test_unknown_pieces_are_skipped_mid_stream() -> None:
    body = ndjson(
        {"delta": "Hel"},
        {"viseme": 3, "at_ms": 20},
        {"delta": "lo", "speaker": "assistant"},
        {"done": True, "transcript": "Hello", "status": "completed", "usage": {}},
    )
    async with client_for(lambda r: httpx.Response(200, content=body)) as client:
        pieces = [p async for p in client.say("hi")]
    assert pieces == [Delta("Hel"), Delta("lo"), Done("Hello", "completed")]


async def test_say_asks_for_audio_only_when_told() -> None:
    bodies: list[object] = []
    reply = ndjson({"audio": "AAE=", "format": "pcm16"}, {"done": True, "transcript": ""})

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, content=reply)

    async with client_for(handler) as client:
        spoken = [p async for p in client.say("hi", audio=True)]
        [p async for p in client.say("hi")]
    assert bodies == [{"text": "hi", "audio": True}, {"text": "hi"}]
    assert isinstance(spoken[0], Audio) and spoken[0].audio == b"\x00\x01"


async def test_a_stream_cut_before_done_is_a_connection_failure() -> None:
    async def cut() -> AsyncIterator[bytes]:
        yield ndjson({"delta": "Hel"})
        raise httpx.ReadError("connection reset by peer")

    async with client_for(lambda r: httpx.Response(200, content=cut())) as client:
        seen = []
        with pytest.raises(ConnectionFailed, match=r"^lost the connection to foreman at "):
            async for piece in client.say("hi"):
                seen.append(piece)
    assert seen == [Delta("Hel")]

    async with client_for(lambda r: httpx.Response(200, content=ndjson({"delta": "a"}))) as c:
        with pytest.raises(ConnectionFailed, match="ended the reply before it was done"):
            async for _ in c.say("hi"):
                pass


async def test_an_error_page_that_is_not_json_is_still_one_line() -> None:
    page = "<html>\n<body>502 Bad Gateway</body>\n</html>"
    async with client_for(lambda r: httpx.Response(502, text=page)) as client:
        with pytest.raises(ApiError) as caught:
            await client.realtime_status()
    assert caught.value.status == 502
    assert str(caught.value) == "HTTP 502: <html> <body>502 Bad Gateway</body> </html>"


async def test_answers_of_the_wrong_shape_are_unexpected_responses() -> None:
    async with client_for(lambda r: httpx.Response(200, json=[1, 2])) as client:
        with pytest.raises(UnexpectedResponse, match="expected a JSON object"):
            await client.health()
    async with client_for(lambda r: httpx.Response(200, text="ok")) as client:
        with pytest.raises(UnexpectedResponse, match="not JSON"):
            await client.health()
    async with client_for(lambda r: httpx.Response(200, text="hi", headers={})) as client:
        with pytest.raises(UnexpectedResponse, match=r"^events: Expected response header"):
            async for _ in client.events():
                pass


async def test_event_kinds_go_to_the_server_as_repeated_prefixes() -> None:
    asked: list[httpx.URL] = []
    stream = (
        b": connected\n\n"
        b'id: 3\nevent: approval.prompt\ndata: {"seq": 3, "kind": "approval.prompt", '
        b'"at": 1.5, "data": {"id": "a1"}, "new": 1}\n\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})

    async with client_for(handler) as client:
        events = [e async for e in client.events(kinds=["approval.", "call."])]
    assert asked[0].params.get_list("kind") == ["approval.", "call."]
    assert [(e.seq, e.kind, e.at, e.data) for e in events] == [
        (3, "approval.prompt", 1.5, {"id": "a1"})
    ]
