"""Draining phone calls at shutdown, in process (the real app on loopback): calls that end
within the grace keep their own reason; the rest hear the goodbye clip and are hung up
through Twilio REST; a new call's webhook is answered with a polite hang-up."""

from __future__ import annotations

import asyncio

import pytest
from phone_stack import Stack, phone_stack

from foreman.config import IdentityConfig
from foreman.phone.clips import clip
from foreman.phone.drain import drain_calls
from foreman.policy.context import Channel
from foreman.session.registry import SHUTDOWN_REASON
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

HELLO = Scenario([Rule(Match.any(), Reply.say("Hello, Foreman here."))])


async def live_caller(stack: Stack, number: str, nth: int) -> FakeTwilioCaller:
    """The `nth` call, once its greeting has been said."""
    caller = stack.caller(from_=number)
    stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
    await caller.dial()
    await stack.mock.wait_for_server_event("response.done", timeout=unit(10), count=nth)
    return caller


async def test_two_calls_hear_the_goodbye_and_are_hung_up_through_rest() -> None:
    owner = IdentityConfig(owner_numbers=["+15550000123"])
    async with phone_stack(HELLO, identity=owner) as stack:
        first = await live_caller(stack, "+15550000123", 1)
        second = await live_caller(stack, "+15550000124", 2)
        registry = stack.app.state.sessions
        sessions = registry.of_channel(Channel.PHONE)
        try:
            hung_up = await drain_calls(
                registry, clip("goodbye"), grace_s=0.0, reason=SHUTDOWN_REASON
            )
            assert hung_up == 2 and registry.closing
            await first.wait_closed(timeout=unit(10))
            await second.wait_closed(timeout=unit(10))
            async with asyncio.timeout(unit(10)):  # the server's side has ended them too
                for session in sessions:
                    await session.wait_closed()
        finally:
            await first.aclose()
            await second.aclose()
        await stack.twilio.records.flush()
        assert sorted(stack.rest.hangups) == sorted([first.call_sid, second.call_sid])
        goodbye = clip("goodbye")
        for caller in (first, second):
            assert goodbye in bytes(caller.played)[-len(goodbye) - 160 :]
            record = await stack.twilio.records.store.get(caller.call_sid)
            assert record is not None and record.reason == SHUTDOWN_REASON
