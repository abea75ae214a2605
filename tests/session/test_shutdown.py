"""The registry at shutdown: calls hung up politely and recorded, a hang-up that never
returns cut short, nothing new started once shutting down."""

from __future__ import annotations

import asyncio
import json

import pytest
from call_harness import FakeRest
from pydantic import SecretStr

from foreman.bus import EventBus
from foreman.config import RealtimeConfig, Settings, TwilioConfig
from foreman.endpoints.interface import UserSide
from foreman.endpoints.text import TextEndpoint
from foreman.phone.bridge import PhoneServices, build_phone_services, serve_media_stream
from foreman.phone.clips import clip
from foreman.policy.context import CallContext, Channel, Role
from foreman.session.conversation import ConversationSession
from foreman.session.registry import SHUTDOWN_REASON, SessionRegistry, ShuttingDown, StartRequest
from foreman.testing.fake_backend import FakeBackend, FakeBackendFactory
from foreman.testing.memory_twilio import MemoryTwilio, twilio_start
from foreman.testing.timeouts import unit

CALL = "CA" + "3" * 32
STREAM = "MZ" + "3" * 32


class SilentRest(FakeRest):
    """Twilio REST that takes the hang-up and never answers."""

    async def hangup(self, call_sid: str) -> bool:
        self.hangups.append(call_sid)
        await asyncio.Event().wait()
        return True


def services(factory: FakeBackendFactory, rest: FakeRest) -> PhoneServices:
    s = Settings(
        twilio=TwilioConfig(account_sid="AC" + "1" * 32, auth_token=SecretStr("t")),
        realtime=RealtimeConfig(endpoint="ws://127.0.0.1:9/v1/realtime"),
    )
    bus = EventBus()
    return build_phone_services(s, bus, factory, SessionRegistry(s, bus, factory), rest=rest)


async def call_stream(svc: PhoneServices) -> MemoryTwilio:
    token = await svc.tokens.issue(CALL, svc.clock.monotonic())
    tw = MemoryTwilio(STREAM)
    tw.feed(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    tw.feed(twilio_start(STREAM, CALL, {"token": token, "caller": "+15550000123"}))
    return tw


async def test_a_hang_up_twilio_never_answers_is_cut_short_and_recorded() -> None:
    factory, rest = FakeBackendFactory(), SilentRest()
    svc = services(factory, rest)
    call = asyncio.create_task(serve_media_stream(svc, await call_stream(svc), signed=True))
    backend = await factory.wait_created()
    await asyncio.wait_for(svc.registry.aclose(limit_s=0.5), unit(5))
    assert await asyncio.wait_for(call, unit(5)) == SHUTDOWN_REASON
    assert rest.hangups == [CALL] and backend.closed and len(svc.registry) == 0
    await svc.records.flush()
    (record,) = await svc.records.store.recent(5)
    assert (record.call_sid, record.reason) == (CALL, SHUTDOWN_REASON)


async def test_a_call_that_arrives_while_shutting_down_hears_the_apology_and_is_recorded() -> None:
    factory, rest = FakeBackendFactory(), FakeRest()
    svc = services(factory, rest)
    svc.apology = clip("apology")[:1600]  # 200 ms of it
    await svc.registry.aclose()  # nothing live: the registry only starts refusing
    tw = await call_stream(svc)
    earpiece = asyncio.create_task(tw.play_in_real_time())
    try:
        reason = await asyncio.wait_for(serve_media_stream(svc, tw, signed=True), unit(5))
    finally:
        earpiece.cancel()
    assert reason == SHUTDOWN_REASON
    assert factory.created == []  # refused before a model session was opened
    assert tw.media_payload == svc.apology and rest.hangups == [CALL]
    assert tw.closed is not None and len(svc.registry) == 0
    assert svc.records.finished[-1].reason == SHUTDOWN_REASON


async def test_no_desk_session_starts_while_shutting_down() -> None:
    factory, rest = FakeBackendFactory(), FakeRest()
    svc = services(factory, rest)
    await svc.registry.aclose()
    with pytest.raises(ShuttingDown, match="shutting down"):
        await svc.registry.start_desk(StartRequest())
    assert factory.created == []


class SlowToCancelEndpoint(TextEndpoint):
    """A hang-up that takes its time to end when cancelled (a REST request being torn
    down), so the session's task group stays in its "shutting down" state meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.running = asyncio.Event()
        self.hanging_up = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.let_go = asyncio.Event()

    async def run(self, tg: asyncio.TaskGroup, user: UserSide) -> None:
        await super().run(tg, user)
        self.running.set()  # the session's task group is up: it is the one passed in

    async def hang_up(self, reason: str) -> None:
        self.hanging_up.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.let_go.wait()
            raise


async def test_ending_a_session_that_is_already_ending_is_harmless() -> None:
    ctx = CallContext(session_id="call-x", channel=Channel.PHONE, role=Role.UNKNOWN)
    endpoint = SlowToCancelEndpoint()
    session = ConversationSession(ctx, FakeBackend(), endpoint)
    run = asyncio.create_task(session.run())
    await asyncio.wait_for(endpoint.running.wait(), unit(5))
    await session.hang_up_now(SHUTDOWN_REASON)
    await asyncio.wait_for(endpoint.hanging_up.wait(), unit(5))
    session.end(SHUTDOWN_REASON)  # the group starts to end; the hang-up lingers
    await asyncio.wait_for(endpoint.cancelled.wait(), unit(5))
    session.end(SHUTDOWN_REASON)  # again, while the group is shutting down: no error
    endpoint.let_go.set()
    assert await asyncio.wait_for(run, unit(5)) == SHUTDOWN_REASON
