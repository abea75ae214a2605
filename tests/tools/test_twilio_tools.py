"""place_call and send_sms through the real TwilioRest client against the loopback Twilio
REST stand-in (basic auth and form fields checked there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from foreman.clock import ManualClock
from foreman.config import Settings, TwilioConfig
from foreman.exceptions import ToolError
from foreman.testing.twilio_rest_standin import TwilioRestStandIn
from foreman.tools.executors.base import Invocation

from .conftest import FakeSession, contact_ctx, registry_for
from .test_executors import spec_for

SID, TOKEN = "AC" + "0" * 32, "tok-secret-123"


@pytest.fixture
async def standin() -> AsyncIterator[TwilioRestStandIn]:
    async with TwilioRestStandIn(SID, TOKEN) as s:
        yield s


def twilio_settings(standin: TwilioRestStandIn, token: str = TOKEN) -> Settings:
    return Settings(
        twilio=TwilioConfig(
            account_sid=SID,
            auth_token=SecretStr(token),
            api_base=standin.base_url,
            from_number="+15550100000",
            public_url="https://voice.example.com",
        )
    )


async def run(settings: Settings, name: str, args: dict[str, Any]) -> Any:
    registry = registry_for(settings)
    spec = spec_for(name)
    bound = registry.resolve(spec)
    inv = Invocation(
        "call_1", spec, contact_ctx(), FakeSession(contact_ctx()), ManualClock(), bound.config
    )
    try:
        return await bound.run(args, inv)
    finally:
        await registry.aclose()


async def test_send_sms_reaches_twilio(standin: TwilioRestStandIn) -> None:
    out = await run(twilio_settings(standin), "send_sms", {"to": "+15550109999", "body": "hi"})
    (msg,) = await standin.wait_for("message")
    assert (msg["to"], msg["from"], msg["body"]) == ("+15550109999", "+15550100000", "hi")
    assert out == {"status": "sent", "to": "+15550109999", "sid": msg["sid"]}


async def test_place_call_redirects_to_our_voice_webhook(standin: TwilioRestStandIn) -> None:
    out = await run(
        twilio_settings(standin), "place_call", {"to": "+15550109999", "purpose": "book a table"}
    )
    (call,) = await standin.wait_for("call")
    assert out["sid"] == call["sid"] and call["to"] == "+15550109999"
    assert (
        '<Redirect method="POST">https://voice.example.com/twilio/voice</Redirect>'
        in (call["twiml"])
    )


async def test_twilio_errors_are_one_line_without_the_token(standin: TwilioRestStandIn) -> None:
    with pytest.raises(ToolError, match="401") as err:
        await run(
            twilio_settings(standin, token="wrong-token-zz"),
            "send_sms",
            {"to": "+15550109999", "body": "hi"},
        )
    assert "wrong-token-zz" not in str(err.value) and standin.messages == []
    standin.fail_next("message", status=400, code=21211, message="Invalid 'To' Phone Number")
    with pytest.raises(ToolError, match="21211"):
        await run(twilio_settings(standin), "send_sms", {"to": "+15550109999", "body": "x"})
