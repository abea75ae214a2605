"""The fake Twilio caller against a tiny in-test server (aiohttp: webhook + media socket).

The server side uses the real sans-I/O pieces (signature checks, TwiML, TwilioStream), so
these tests also show that the caller and the protocol module agree on every shape.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from websockets.exceptions import InvalidStatus

from foreman.io.twilio_rest import TwilioRest
from foreman.protocols.twilio import (
    Dtmf,
    MarkEcho,
    Media,
    Start,
    Stop,
    TwilioStream,
    connect_stream_twiml,
    public_http_url,
    public_ws_url,
    validate_request,
    validate_ws_upgrade,
)
from foreman.testing.fake_twilio import FakeCallError, FakeTwilioCaller
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://voice.example.com"


class TinyServer:
    """Just enough of Foreman's Twilio side to drive the fake caller."""

    def __init__(self) -> None:
        self.base = ""
        self.webhooks: list[dict[str, str]] = []
        self.events: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
        self.stream = TwilioStream()
        self.content_type = "text/xml"
        self.webhook_headers: dict[str, str] = {}
        self.ws: web.WebSocketResponse | None = None
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/twilio/voice", self.voice)
        app.router.add_get("/twilio/media", self.media)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def voice(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        url = public_http_url(PUBLIC, "/twilio/voice")
        if not validate_request(TOKEN, url, form, request.headers.get("X-Twilio-Signature")):
            return web.Response(status=403, text="bad signature")
        self.webhooks.append(form)
        self.webhook_headers = dict(request.headers)
        twiml = connect_stream_twiml(
            public_ws_url(PUBLIC, "/twilio/media"), {"caller": form["From"], "token": "tok-1"}
        )
        return web.Response(text=twiml, content_type=self.content_type)

    async def media(self, request: web.Request) -> web.StreamResponse:
        ws_url = public_ws_url(PUBLIC, "/twilio/media")
        if not validate_ws_upgrade(TOKEN, ws_url, request.headers.get("X-Twilio-Signature")):
            return web.Response(status=403)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws = ws
        self.connected.set()
        loop = asyncio.get_running_loop()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for event in self.stream.receive(msg.data):
                    await self.events.put((loop.time(), event))
        self.stream.connection_lost()
        self.closed.set()
        return ws

    async def send(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(text)

    async def next_event(self, kind: type | tuple[type, ...]) -> tuple[float, Any]:
        """The next event of `kind`, skipping others (media frames, mostly)."""
        async with asyncio.timeout(unit(5)):
            while True:
                t, event = await self.events.get()
                if isinstance(event, kind):
                    return t, event


@pytest.fixture
async def server() -> AsyncIterator[TinyServer]:
    s = TinyServer()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def caller(server: TinyServer) -> AsyncIterator[FakeTwilioCaller]:
    c = FakeTwilioCaller(server_http=server.base, public_url=PUBLIC, auth_token=TOKEN)
    yield c
    await c.aclose()


async def test_dial_signs_webhook_and_upgrade_and_sends_start(
    server: TinyServer, caller: FakeTwilioCaller
) -> None:
    await caller.dial()
    _, start = await server.next_event(Start)
    (hook,) = server.webhooks
    assert hook["CallSid"] == caller.call_sid == start.call_sid
    assert hook["From"] == "+15005550006" and hook["To"] == "+15005550001"
    assert start.stream_sid == caller.stream_sid and start.stream_sid.startswith("MZ")
    assert len(start.stream_sid) == 34 and start.call_sid.startswith("CA")
    assert start.custom_parameters == {"caller": "+15005550006", "token": "tok-1"}
    assert caller.stream_url == "wss://voice.example.com/twilio/media"
    assert server.stream.counters["bad"] == 0
    assert caller.validation_errors == []


async def test_refused_webhook_and_upgrade(server: TinyServer, caller: FakeTwilioCaller) -> None:
    response = await caller.post_voice_webhook(signature=None)
    assert response.status_code == 403
    response = await caller.post_voice_webhook(signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert response.status_code == 403
    twiml = (await caller.post_voice_webhook()).text
    with pytest.raises(InvalidStatus):
        await caller.answer(twiml, signature="YLBFU7j+9N2asEIdhfasmQxodZc=")  # an https sig
    assert not server.connected.is_set()


async def test_dial_raises_when_the_webhook_is_refused(server: TinyServer) -> None:
    wrong = FakeTwilioCaller(server_http=server.base, public_url=PUBLIC, auth_token="x" * 32)
    with pytest.raises(FakeCallError, match="403"):
        await wrong.dial()


async def test_speech_is_paced_in_real_time(server: TinyServer, caller: FakeTwilioCaller) -> None:
    await caller.dial()
    await server.next_event(Start)
    pcm = synthesize("one two three", 8000)
    frames = -(-len(pcm) // 2 // 160)
    assert frames >= 30
    loop = asyncio.get_running_loop()
    t_start = loop.time()
    await caller.play_speech(pcm)
    elapsed = loop.time() - t_start
    arrivals: list[float] = []
    media: list[Media] = []
    while len(media) < frames:
        t, event = await server.next_event(Media)
        arrivals.append(t)
        media.append(event)
    # Paced, not burst: frame count matches elapsed / 20 ms within a few frames.
    span = arrivals[-1] - arrivals[0]
    assert abs(span / 0.020 - (frames - 1)) <= 3 * unit(1), (span, frames)
    assert abs(elapsed / 0.020 - frames) <= 4 * unit(1), (elapsed, frames)
    assert [m.chunk for m in media] == list(range(1, frames + 1))
    stamps = [m.timestamp for m in media]
    assert all(b - a == 20 for a, b in itertools.pairwise(stamps))
    assert all(len(m.payload) == 160 for m in media)
    assert server.stream.counters["sequence_gaps"] == 0
    sent = b"".join(m.payload for m in media)
    from foreman.audio.g711 import pcm16_to_ulaw

    assert sent[: len(pcm) // 2] == pcm16_to_ulaw(pcm)
    assert caller.frames_sent == frames


async def test_wire_numbers_are_strings(server: TinyServer, caller: FakeTwilioCaller) -> None:
    seen: list[dict[str, Any]] = []
    original = server.stream.receive

    def spy(text: str | bytes) -> list[Any]:
        seen.append(json.loads(text))
        return original(text)

    server.stream.receive = spy  # type: ignore[method-assign]
    await caller.dial()
    await caller.send_silence(40)
    with pytest.raises(ValueError, match="DTMF"):
        await caller.send_dtmf("x")  # no phone has that key
    await caller.send_dtmf("5")
    await server.next_event(Dtmf)
    media = [m for m in seen if m["event"] == "media"]
    assert len(media) == 2
    for m in media:
        assert isinstance(m["sequenceNumber"], str)
        assert isinstance(m["media"]["chunk"], str) and isinstance(m["media"]["timestamp"], str)
        assert base64.b64decode(m["media"]["payload"]) == b"\xff" * 160
    assert seen[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert seen[1]["sequenceNumber"] == "1"
    assert [int(m["sequenceNumber"]) for m in seen[1:]] == list(range(1, len(seen)))


async def test_marks_echo_after_their_audio_has_played(
    server: TinyServer, caller: FakeTwilioCaller
) -> None:
    await caller.dial()
    await server.next_event(Start)
    tone = bytes.fromhex("FFA9A0A9FF292029") * 200  # 1600 bytes = 200 ms
    loop = asyncio.get_running_loop()
    # Nothing queued: the mark comes straight back.
    t0 = loop.time()
    await server.send(server.stream.mark("idle"))
    t, echo = await server.next_event(MarkEcho)
    assert echo.name == "idle" and t - t0 < 0.1
    t0 = loop.time()
    for i in (1, 2, 3):
        await server.send(server.stream.media_bytes(tone))
        await server.send(server.stream.mark(f"m{i}"))
    times = []
    for i in (1, 2, 3):
        t, echo = await server.next_event(MarkEcho)
        assert echo.name == f"m{i}"
        times.append(t - t0)
    for i, t in enumerate(times, start=1):
        assert 0.2 * i - 0.03 <= t <= 0.2 * i + 0.1 * unit(1), times
    assert caller.played.count(tone) == 3 and len(caller.played) == 4800
    assert caller.marks_echoed == ["idle", "m1", "m2", "m3"] and caller.marks_dropped == []
    assert caller.validation_errors == []


async def test_clear_drops_audio_and_echoes_pending_marks_at_once(
    server: TinyServer, caller: FakeTwilioCaller
) -> None:
    await caller.dial()
    await server.next_event(Start)
    chunk = b"\x29" * 1600
    for i in (1, 2, 3):
        await server.send(server.stream.media_bytes(chunk))
        await server.send(server.stream.mark(f"m{i}"))
    await server.next_event(MarkEcho)  # m1: 200 ms played
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await server.send(server.stream.clear())
    _t2, e2 = await server.next_event(MarkEcho)
    t3, e3 = await server.next_event(MarkEcho)
    assert (e2.name, e3.name) == ("m2", "m3")
    assert t3 - t0 < 0.1  # at once, not after 400 ms of audio
    await caller.wait_for("clear")
    assert caller.clears == 1
    assert caller.marks_dropped == ["m2", "m3"]
    assert 1600 <= len(caller.played) < 1600 + 3 * 160
    assert caller.queued_ms == 0 and caller.dropped_bytes + len(caller.played) == 4800
    # Playback resumes for audio sent after the clear.
    await server.send(server.stream.media_bytes(b"\xa9" * 320))
    await server.send(server.stream.mark("after"))
    _, echo = await server.next_event(MarkEcho)
    assert echo.name == "after"
    await caller.wait_played_ms(len(caller.played) // 8, timeout=unit(1))
    assert caller.played.endswith(b"\xa9" * 320)


async def test_records_what_twilio_would_reject(
    server: TinyServer, caller: FakeTwilioCaller
) -> None:
    await caller.dial()
    await server.next_event(Start)
    sid = caller.stream_sid
    assert server.ws is not None
    await server.ws.send_bytes(b"\x00\x01")
    await server.send(
        json.dumps(
            {"event": "media", "streamSid": "MZwrong", "media": {"payload": "////" * 53 + "/w=="}}
        )
    )
    await server.send(json.dumps({"event": "hello", "streamSid": sid}))
    await server.send(json.dumps({"event": "clear", "streamSid": sid, "extra": 1}))
    await server.send(
        json.dumps(
            {
                "event": "media",
                "streamSid": sid,
                "media": {"payload": base64.b64encode(b"\xff" * 100).decode()},
            }
        )
    )
    await server.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {}}))
    await server.send(server.stream.mark("last"))
    await caller.wait_for("mark", predicate=lambda m: m["mark"].get("name") == "last")
    errors = caller.validation_errors
    assert len(errors) == 6, errors
    assert "binary" in errors[0] and "streamSid" in errors[1] and "hello" in errors[2]
    assert "fields" in errors[3] and "160-byte" in errors[4] and "mark.mark" in errors[5]
    assert caller.clears == 0  # the malformed clear was not acted on


async def test_hangup_sends_stop_then_closes(server: TinyServer, caller: FakeTwilioCaller) -> None:
    await caller.dial()
    await server.next_event(Start)
    await caller.hangup()
    _, stop = await server.next_event(Stop)
    assert stop.call_sid == caller.call_sid
    async with asyncio.timeout(unit(2)):
        await server.closed.wait()
    with pytest.raises(FakeCallError):
        await caller.send_silence(20)


async def test_close_without_stop(server: TinyServer, caller: FakeTwilioCaller) -> None:
    await caller.dial()
    await server.next_event(Start)
    await caller.close_without_stop()
    async with asyncio.timeout(unit(2)):
        await server.closed.wait()
    assert server.stream.phase == "stopped"
    assert server.events.empty()  # no Stop event was ever produced


async def test_server_close_is_seen_and_pending_sends_fail(
    server: TinyServer, caller: FakeTwilioCaller
) -> None:
    await caller.dial()
    await server.next_event(Start)
    speaking = asyncio.create_task(caller.send_silence(2000))
    await server.next_event(Media)
    assert server.ws is not None
    await server.ws.close()
    await caller.wait_closed(timeout=unit(2))
    with pytest.raises(FakeCallError):
        await speaking
    # The stream is over for the caller too: new sends fail at once instead of queueing.
    with pytest.raises(FakeCallError):
        await caller.send_silence(20)
    with pytest.raises(FakeCallError):
        await caller.send_dtmf("5")


async def test_continuous_silence_keeps_the_stream_flowing(server: TinyServer) -> None:
    c = FakeTwilioCaller(
        server_http=server.base, public_url=PUBLIC, auth_token=TOKEN, continuous_silence=True
    )
    try:
        await c.dial()
        for _ in range(5):
            _, m = await server.next_event(Media)
            assert m.payload == b"\xff" * 160
    finally:
        await c.aclose()


async def test_rest_hangup_ends_the_fake_call_like_twilio(server: TinyServer) -> None:
    account = "AC" + "7" * 32
    async with TwilioRestStandIn(account, TOKEN) as standin:
        c = FakeTwilioCaller(
            server_http=server.base, public_url=PUBLIC, auth_token=TOKEN, account_sid=account
        )
        await c.dial()
        standin.add_live_call(c.call_sid, on_hangup=c.remote_hangup)
        rest = TwilioRest(account, TOKEN, api_base=standin.base_url)
        try:
            assert await rest.hangup(c.call_sid)
        finally:
            await rest.aclose()
        _, stop = await server.next_event(Stop)
        assert stop.call_sid == c.call_sid
        await c.wait_closed(timeout=unit(2))
        assert standin.hangups == [c.call_sid]


async def test_benchmark_mode_counts_media_without_keeping_it(server: TinyServer) -> None:
    c = FakeTwilioCaller(
        server_http=server.base, public_url=PUBLIC, auth_token=TOKEN, record_media=False
    )
    seen: list[tuple[str, float]] = []
    c.on_message = lambda msg, t: seen.append((msg["event"], t))
    try:
        await c.dial()
        await server.next_event(Start)
        for _ in range(3):
            await server.send(server.stream.media_bytes(b"\xa9" * 160))
        await server.send(server.stream.mark("end"))
        await c.wait_for("mark")
        assert c.media_received == 3 and [m["event"] for m in c.received] == ["mark"]
        assert [e for e, _ in seen] == ["media", "media", "media", "mark"]
        assert len(c.received_at) == 1 and c.received_at[0] == seen[-1][1]
        await c.wait_played_ms(60, timeout=unit(2))
        assert bytes(c.played) == b"\xa9" * 480
    finally:
        await c.aclose()


async def test_twiml_served_as_text_plain_is_flagged(
    server: TinyServer, caller: FakeTwilioCaller
) -> None:
    server.content_type = "text/plain"
    await caller.dial()
    assert caller.validation_errors == ["voice webhook Content-Type 'text/plain'"]
    assert server.webhook_headers["User-Agent"] == "TwilioProxy/1.1"
    assert server.webhook_headers["Content-Type"].startswith("application/x-www-form-urlencoded")
