"""serve_media_stream: nothing reaches a backend before a valid `start` and token."""

from __future__ import annotations

import asyncio
import json

from call_harness import FakeRest, speech_ulaw
from pydantic import SecretStr

from foreman.bus import EventBus
from foreman.config import IdentityConfig, RealtimeConfig, Settings, TwilioConfig
from foreman.phone.bridge import build_phone_services, serve_media_stream
from foreman.phone.clips import clip
from foreman.policy.context import Role
from foreman.session.registry import SessionRegistry
from foreman.testing.fake_backend import FakeBackendFactory
from foreman.testing.memory_twilio import MemoryTwilio, twilio_start
from foreman.testing.timeouts import unit

CALL = "CA" + "2" * 32
STREAM = "MZ" + "2" * 32


def services(  # type: ignore[no-untyped-def]
    factory: FakeBackendFactory, rest: FakeRest | None = None, *, realtime_enabled: bool = True
):
    s = Settings(
        twilio=TwilioConfig(account_sid="AC" + "1" * 32, auth_token=SecretStr("t")),
        identity=IdentityConfig(contacts={"Ann": "+15550000111"}),
        realtime=RealtimeConfig(enabled=realtime_enabled, endpoint="ws://127.0.0.1:9/v1/realtime"),
    )
    bus = EventBus()
    registry = SessionRegistry(s, bus, factory)
    return build_phone_services(s, bus, factory, registry, rest=rest or FakeRest())


async def test_media_before_start_is_dropped_and_the_backend_waits_for_the_token() -> None:
    factory = FakeBackendFactory()
    svc = services(factory)
    token = await svc.tokens.issue(CALL, svc.clock.monotonic())
    tw = MemoryTwilio(STREAM)
    tw.feed(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    tw.feed_media(speech_ulaw()[:320])  # before start: nobody to give it to
    assert factory.created == []
    tw.feed(twilio_start(STREAM, CALL, {"token": token, "caller": "+15550000111"}))
    task = asyncio.create_task(serve_media_stream(svc, tw, signed=True))
    backend = await factory.wait_created()
    assert backend.started and backend.pushed_b64 == []
    session = svc.live_call(CALL)
    assert session is not None and session.ctx.role is Role.CONTACT and session.ctx.verified
    tw.feed_media(speech_ulaw()[320:480])
    await backend.wait_until(lambda: len(backend.pushed_b64) == 1)
    tw.feed_stop()
    assert await asyncio.wait_for(task, 5) == "caller hung up"
    assert svc.live_call(CALL) is None and svc.records.finished[-1].role == "contact"


async def test_a_start_in_another_format_is_refused_without_a_backend() -> None:
    factory = FakeBackendFactory()
    svc = services(factory)
    tw = MemoryTwilio(STREAM)
    start = json.loads(twilio_start(STREAM, CALL, {}))
    start["start"]["mediaFormat"]["encoding"] = "audio/l16"
    tw.feed(json.dumps(start))
    reason = await asyncio.wait_for(serve_media_stream(svc, tw, signed=True), 5)
    assert reason.startswith("bad start") and tw.closed is not None and tw.closed[0] == 1008
    assert factory.created == []


async def test_realtime_disabled_refuses_the_call_before_a_backend_and_records_why() -> None:
    factory, rest = FakeBackendFactory(), FakeRest()
    svc = services(factory, rest, realtime_enabled=False)
    svc.apology = clip("apology")[:2400]  # 300 ms of it: the test waits for it to play
    token = await svc.tokens.issue(CALL, svc.clock.monotonic())
    tw = MemoryTwilio(STREAM)
    tw.feed(twilio_start(STREAM, CALL, {"token": token, "caller": "+15550000111"}))
    earpiece = asyncio.create_task(tw.play_in_real_time())
    try:
        reason = await asyncio.wait_for(serve_media_stream(svc, tw, signed=True), unit(5))
    finally:
        earpiece.cancel()
    assert "realtime.enabled" in reason and "\n" not in reason
    assert factory.created == []
    # The caller heard the apology (its marks came back), then the call was hung up.
    assert tw.media_payload == svc.apology and tw.marks
    assert rest.hangups == [CALL] and tw.closed is not None and tw.closed[0] == 1000
    assert CALL not in svc.registry
    record = svc.records.finished[-1]
    assert (record.call_sid, record.reason, record.role) == (CALL, reason, "contact")


async def test_shutdown_hangs_up_live_calls_through_rest() -> None:
    factory, rest = FakeBackendFactory(), FakeRest()
    svc = services(factory, rest)
    token = await svc.tokens.issue(CALL, svc.clock.monotonic())
    tw = MemoryTwilio(STREAM)
    tw.feed(twilio_start(STREAM, CALL, {"token": token, "caller": "+15550000999"}))
    task = asyncio.create_task(serve_media_stream(svc, tw, signed=False))
    backend = await factory.wait_created()
    assert svc.live_call(CALL) is not None
    assert svc.live_call(CALL).ctx.verified is False  # type: ignore[union-attr]
    await svc.registry.aclose()
    await svc.aclose()
    assert await asyncio.wait_for(task, 5) == "server shutting down"
    assert rest.hangups == [CALL] and backend.closed and len(svc.registry) == 0
    assert rest.closed


def test_a_calls_greeting_has_fixed_words_naming_a_known_caller() -> None:
    from foreman.phone.bridge import call_backend_options
    from foreman.policy.context import CallContext, Channel
    from foreman.protocols.twilio.admission import Admitted

    def options(role: Role, direction: str) -> tuple[str | None, str | None]:
        ctx = CallContext("s1", Channel.PHONE, role, "+15550100001", "Ada")
        call = Admitted("CA1", "MZ1", direction, "+15550100001", "+15550100002", "")  # type: ignore[arg-type]
        opts = call_backend_options(Settings(), ctx, call, [])
        return opts.greeting, opts.greeting_text

    greeting, words = options(Role.OWNER, "inbound")
    assert greeting is not None and words == "Hello Ada, how can I help?"
    assert options(Role.UNKNOWN, "inbound")[1] == "Hello, how can I help?"
    assert options(Role.UNKNOWN, "outbound")[1] == "Hello, this is an assistant calling."
