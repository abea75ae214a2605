"""A malformed-frame fuzzer beside a healthy call, through the real app (uvicorn, the real
backend) and the mock Realtime server.

One call is a well-behaved fake Twilio caller. Another, admitted with a genuine stream
token, sends hundreds of malformed frames while the first one talks; a third sends one frame
over the WebSocket message cap. The healthy call must not notice: its answer comes back as
fast as before the attack (within a bound), nothing odd reaches it, its stats show no bad
input. The attacked call carries on while its bad frames stay within the rule (at most 200
are ignored) and ends when they pass it; the oversized frame closes only its own socket
(1009). The server keeps serving throughout.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from phone_stack import Stack, phone_stack
from twilio_app import TOKEN, http_to_ws
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from foreman.endpoints.twilio import MAX_BAD_MESSAGES
from foreman.protocols.twilio.caller import TwilioCallerStream
from foreman.protocols.twilio.messages import BadMessage
from foreman.protocols.twilio.signature import compute_signature
from foreman.protocols.twilio.stream import TwilioStream
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import new_sid

pytestmark = pytest.mark.e2e

SEED = 20_240_611
FRAMES = 300  # past the 200 a call ignores, so the rule's end is reached too
ANSWER = "The weather will be fine."


def malformed_frames(stream_sid: str, count: int, seed: int) -> list[str | bytes]:
    """`count` frames a started server stream counts as bad, drawn from every kind of
    damage: not JSON, binary, the wrong JSON shape, missing or mistyped fields, payloads that
    are not base64, another stream's sid, keys that are not DTMF, a second start, nesting a
    parser could choke on, and large (but allowed) junk."""
    rng = random.Random(seed)
    judge = TwilioStream()
    judge.receive(_start(stream_sid, "CA" + "0" * 32, {}))

    def text(n: int) -> str:
        return "".join(rng.choice('abc{}[]":,\\ \u00e9\u20ac\U0001f600') for _ in range(n))

    makers: list[Callable[[], str | bytes]] = [
        lambda: text(rng.randint(1, 300)),
        lambda: rng.randbytes(rng.randint(1, 300)),
        lambda: json.dumps([1, 2, {"event": "media"}]),
        lambda: json.dumps({"no_event": True}),
        lambda: json.dumps({"event": rng.choice([1, None, [], {}])}),
        lambda: json.dumps(
            {"event": "media", "streamSid": stream_sid, "media": {"payload": text(40)}}
        ),
        lambda: json.dumps({"event": "media", "streamSid": stream_sid, "media": "x"}),
        lambda: json.dumps(
            {
                "event": "media",
                "streamSid": "MZ" + "f" * 32,
                "media": {"payload": "/w==", "chunk": "1", "timestamp": "0"},
            }
        ),
        lambda: json.dumps(
            {"event": "media", "media": {"payload": "/w==", "chunk": "x", "timestamp": "0"}}
        ),
        lambda: json.dumps({"event": "dtmf", "streamSid": stream_sid, "dtmf": {"digit": "Z"}}),
        lambda: json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {}}),
        lambda: _start(stream_sid, "CA" + "1" * 32, {"token": "again"}),
        lambda: "[" * rng.randint(1000, 20_000),
        lambda: json.dumps({"event": "media", "media": {"payload": "A" * 40_001}}),
        lambda: "x" * rng.randint(10_000, 60_000),
    ]
    frames: list[str | bytes] = []
    while len(frames) < count:
        frame = rng.choice(makers)()
        if any(isinstance(e, BadMessage) for e in judge.receive(frame)):
            frames.append(frame)
    return frames


def _start(stream_sid: str, call_sid: str, params: dict[str, str]) -> str:
    wire = TwilioCallerStream()
    wire.connected()
    return wire.start(
        stream_sid=stream_sid, call_sid=call_sid, account_sid="AC" + "a" * 32,
        custom_parameters=params,
    )  # fmt: skip


class RawCall:
    """A call admitted like any other (signed webhook, genuine token, `start`), whose socket
    the test then writes to directly."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.caller = stack.caller()
        self.call_sid = self.caller.call_sid
        self.stream_sid = new_sid("MZ")
        self.ws: ClientConnection | None = None
        self._drain: asyncio.Task[None] | None = None

    async def open(self) -> ClientConnection:
        reply = await self.caller.post_voice_webhook()
        assert reply.status_code == 200, reply.text
        params = _parameters(reply.text)
        headers = {
            "X-Twilio-Signature": compute_signature(
                TOKEN, "wss://voice.example.com/twilio/media", {}
            )
        }
        self.ws = await connect(
            http_to_ws(self.stack.base) + "/twilio/media",
            additional_headers=headers,
            max_size=None,
            compression=None,
        )
        await self.ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        await self.ws.send(_start(self.stream_sid, self.call_sid, params))
        self._drain = asyncio.create_task(self._read_all())  # the greeting it is sent
        await _until(lambda: self.stack.twilio.live_call(self.call_sid) is not None)
        return self.ws

    async def _read_all(self) -> None:
        assert self.ws is not None
        try:
            async for _ in self.ws:
                pass
        except ConnectionClosed:
            pass

    @property
    def bad_messages(self) -> int:
        call = self.stack.twilio.live_call(self.call_sid)
        return -1 if call is None else int(call.endpoint.stats.bad_messages)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._drain is not None:
            await asyncio.wait_for(self._drain, unit(5))


def _parameters(twiml: str) -> dict[str, str]:
    from xml.etree import ElementTree

    stream = ElementTree.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None
    return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
    """Wait for a condition no event announces (the server's own counters): polls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + unit(timeout)
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.005)


async def answer_latency(stack: Stack, caller: FakeTwilioCaller, words: str) -> float:
    """Speak, then measure from the last frame of speech to the first frame of the answer;
    return once the whole answer has been played."""
    await _quiet(stack, caller.call_sid)
    before = caller.media_received
    await caller.play_speech(synthesize(words, 8000))
    spoken = asyncio.get_running_loop().time()
    await caller.wait_for("media", count=before + 1, timeout=unit(10))
    arrivals = [
        t
        for t, m in zip(caller.received_at, caller.received, strict=True)
        if m.get("event") == "media"
    ]
    await _quiet(stack, caller.call_sid)
    return arrivals[before] - spoken


async def _quiet(stack: Stack, call_sid: str) -> None:
    """The assistant has finished its reply and the caller has heard all of it."""
    call = stack.twilio.live_call(call_sid)
    assert call is not None
    await _until(lambda: not call.turns.busy and not call.endpoint.playing)


async def recorded(stack: Stack, call_sid: str) -> dict[str, Any]:
    async with asyncio.timeout(unit(10)):
        while True:
            event = await stack.events.get()
            if event.kind == "call.recorded" and event.data["call_sid"] == call_sid:
                return dict(event.data)


@pytest.mark.parametrize(
    "seed",
    [SEED, *(pytest.param(SEED + n, marks=pytest.mark.slow) for n in range(1, 9))],
)
async def test_malformed_frames_on_one_call_do_not_disturb_the_call_beside_it(seed: int) -> None:
    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say("Hello.")),
            Rule(Match.audio(1), Reply.say(ANSWER)),
            Rule(Match.audio(2), Reply.say(ANSWER)),
        ]
    )
    async with phone_stack(scenario) as stack, stack.caller(continuous_silence=True) as healthy:
        await healthy.dial()
        await healthy.wait_for("media", timeout=unit(10))  # the greeting
        baseline = await answer_latency(stack, healthy, "What is the weather tomorrow?")

        attacked = RawCall(stack)
        ws = await attacked.open()
        frames = malformed_frames(attacked.stream_sid, FRAMES, seed)
        # Frames that are well-formed JSON with events nobody knows: ignored, not counted.
        rng = random.Random(seed)
        unknown = [json.dumps({"event": f"x-{rng.random()}", "n": [rng.random()] * 20})] * 50
        answered = asyncio.Event()
        sent_before_answer = 0

        async def attack() -> None:
            nonlocal sent_before_answer
            sent = 0
            # All through the healthy call's question and answer (the pacing is the attack's
            # own, not a wait for the server): the counted frames first, within the rule.
            while not answered.is_set() or sent < MAX_BAD_MESSAGES:
                if sent < MAX_BAD_MESSAGES:
                    await ws.send(frames[sent])
                    sent += 1
                await ws.send(unknown[sent % len(unknown)])
                if not answered.is_set():
                    sent_before_answer = sent
                await asyncio.sleep(0.004)
            # Within the rule the call carries on: every bad frame ignored and counted.
            await _until(lambda: attacked.bad_messages == MAX_BAD_MESSAGES)
            # Past it, the call ends: its socket is closed by the server.
            with pytest.raises(ConnectionClosed):
                for frame in frames[MAX_BAD_MESSAGES:]:
                    await ws.send(frame)
                    await asyncio.sleep(0)  # let the close arrive between frames
                await ws.recv()  # the close, if every frame went out first

        attacking = asyncio.create_task(attack())
        during = await answer_latency(stack, healthy, "And the day after?")
        answered.set()
        await asyncio.wait_for(attacking, unit(20))
        record = await recorded(stack, attacked.call_sid)
        assert record["reason"].startswith("too many bad messages from Twilio"), record
        await attacked.close()

        # One frame over the WebSocket message cap: that socket alone is closed, with 1009.
        oversized = RawCall(stack)
        big = await oversized.open()
        await big.send("x" * (stack.settings.limits.ws_max_message_bytes + 1))
        await asyncio.wait_for(big.wait_closed(), unit(10))
        assert big.close_code == 1009
        await oversized.close()

        # The healthy call noticed nothing (while the attack ran through its question).
        assert sent_before_answer >= 100, sent_before_answer
        assert during < baseline + unit(0.75), (baseline, during)
        live = stack.twilio.live_call(healthy.call_sid)
        assert live is not None and live.endpoint.stats.bad_messages == 0
        assert live.stats.bad_input == 0 and live.stats.barge_ins == 0
        assert healthy.validation_errors == [] and healthy.clears == 0
        # And the server goes on serving: the API, and a new call.
        async with httpx.AsyncClient(base_url=stack.base) as http:
            assert (await http.get("/api/health")).status_code == 200
        async with stack.caller() as next_call:
            await next_call.dial()
            await next_call.wait_for("media", timeout=unit(10))
        await healthy.hangup()
    assert stack.mock.sessions[0].received  # the healthy call's own model session
