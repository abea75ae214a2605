"""The log lines of the phone and session steps that the served call does not take: a call
placed, a call refused, a session that cannot start. One line each, naming the cause."""

from __future__ import annotations

import logging

import httpx
import pytest
from phone_stack import phone_stack
from twilio_app import PUBLIC

from foreman.testing.fake_twilio import FakeCallError, FakeTwilioCaller
from foreman.testing.mock_realtime import Match, Reply, Rule, Scenario
from foreman.testing.server import free_port
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

HELLO = Scenario([Rule(Match.any(), Reply.say("Hello."))])


def foreman_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """(short logger name, level, message) of Foreman's own lines (not the test mocks')."""
    return [
        (r.name.removeprefix("foreman."), r.levelname, r.getMessage())
        for r in caplog.records
        if r.name.startswith("foreman.") and not r.name.startswith("foreman.testing")
    ]


async def test_a_placed_call_and_a_refused_webhook(caplog: pytest.LogCaptureFixture) -> None:
    async with phone_stack(HELLO) as stack, httpx.AsyncClient(base_url=stack.base) as http:
        caplog.set_level(logging.INFO)
        caplog.clear()
        r = await http.post("/api/calls", json={"to": "+15550001234", "purpose": "rent"})
        assert r.status_code == 201
        placed = r.json()["call_sid"]
        forged = FakeTwilioCaller(
            server_http=stack.base, public_url=PUBLIC, auth_token="not-the-auth-token"
        )
        with pytest.raises(FakeCallError):
            await forged.dial()
        lines = foreman_lines(caplog)
    assert lines == [
        ("call", "INFO", f"{placed} placed to +15550001234: rent"),
        ("call", "WARNING", "refused at /twilio/voice: missing or wrong X-Twilio-Signature"),
    ]


async def test_a_call_whose_model_is_unreachable_is_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    async with phone_stack(HELLO, realtime={"endpoint": nowhere}) as stack:
        caplog.set_level(logging.INFO)
        caplog.clear()
        async with stack.caller() as caller:
            await caller.dial()
            await caller.wait_closed(timeout=unit(15))  # after the apology
        await stack.twilio.records.flush()
        lines = foreman_lines(caplog)
    sid = caller.call_sid
    assert lines[0] == ("call", "INFO", f"{sid} incoming from {caller.from_} to {caller.to}")
    # One line says what went wrong; the rest (the hang-up after the apology) is INFO.
    ((name, level, message),) = [line for line in lines[1:] if line[1] != "INFO"]
    assert (name, level) == ("session", "ERROR")
    assert message.startswith(f"call-{sid} failed to start: backend failed to start: ")
    assert "\n" not in message


async def test_a_desk_session_that_cannot_start_is_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}/v1/realtime"
    async with phone_stack(HELLO) as stack, httpx.AsyncClient(base_url=stack.base) as http:
        caplog.set_level(logging.INFO)
        caplog.clear()
        r = await http.post("/api/realtime/start", json={"endpoint": nowhere})
        lines = foreman_lines(caplog)
    assert r.status_code == 502
    ((name, level, message),) = lines
    assert (name, level) == ("session", "WARNING")
    assert message.startswith("desk-") and " failed to start: " in message
