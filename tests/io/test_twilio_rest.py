"""TwilioRest (the twilio library on httpx) against the loopback REST stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from foreman.io.twilio_rest import TwilioRest, TwilioRestError
from foreman.protocols.twilio.twiml import connect_stream_twiml
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

SID = "AC" + "1" * 32
TOKEN = "secret-auth-token-0123456789abcd"


@pytest.fixture
async def standin() -> AsyncIterator[TwilioRestStandIn]:
    async with TwilioRestStandIn(SID, TOKEN) as s:
        yield s


@pytest.fixture
async def rest(standin: TwilioRestStandIn) -> AsyncIterator[TwilioRest]:
    client = TwilioRest(SID, TOKEN, api_base=standin.base_url, timeout_s=unit(5))
    yield client
    await client.aclose()


async def test_create_call_sends_twiml_and_returns_the_sid(
    standin: TwilioRestStandIn, rest: TwilioRest
) -> None:
    twiml = connect_stream_twiml("wss://voice.example.com/twilio/media", {"purpose": "remind"})
    sid = await rest.create_call(
        to="+15005550001",
        from_="+15005550006",
        twiml=twiml,
        status_callback="https://voice.example.com/twilio/call-status",
    )
    assert sid.startswith("CA") and len(sid) == 34
    (call,) = await standin.wait_for("call", timeout=unit(2))
    assert call["sid"] == sid
    assert (call["to"], call["from"], call["twiml"]) == ("+15005550001", "+15005550006", twiml)
    assert call["status_callback"] == "https://voice.example.com/twilio/call-status"
    (req,) = standin.requests
    assert req["path"] == f"/2010-04-01/Accounts/{SID}/Calls.json" and req["status"] == 201


async def test_send_sms(standin: TwilioRestStandIn, rest: TwilioRest) -> None:
    sid = await rest.send_sms(to="+15005550001", from_="+15005550006", body="Meeting at 3 pm")
    assert sid.startswith("SM")
    (msg,) = await standin.wait_for("message", timeout=unit(2))
    assert (msg["sid"], msg["to"], msg["body"]) == (sid, "+15005550001", "Meeting at 3 pm")


async def test_hangup_live_call_and_already_gone_call(
    standin: TwilioRestStandIn, rest: TwilioRest
) -> None:
    sid = await rest.create_call(to="+15005550001", from_="+15005550006", twiml="<Response/>")
    assert await rest.hangup(sid) is True
    assert standin.requests[-1]["status"] == 200
    assert standin.requests[-1]["form"]["Status"] == ["completed"]
    # Second hang-up: Twilio answers 404 / 20404, which means "already over".
    assert await rest.hangup(sid) is True
    assert standin.requests[-1]["status"] == 404
    assert await rest.hangup("CA" + "9" * 32) is True
    assert await standin.wait_for("hangup", count=3, timeout=unit(2)) == [sid, sid, "CA" + "9" * 32]


async def test_hangup_runs_the_live_call_hook(standin: TwilioRestStandIn, rest: TwilioRest) -> None:
    ended = asyncio.Event()

    async def hook() -> None:
        ended.set()

    standin.add_live_call("CA" + "5" * 32, on_hangup=hook)
    assert await rest.hangup("CA" + "5" * 32)
    async with asyncio.timeout(unit(2)):
        await ended.wait()


async def test_wrong_token_is_a_one_line_error_without_secrets(standin: TwilioRestStandIn) -> None:
    bad = TwilioRest(SID, "wrong-token-zzzz", api_base=standin.base_url, timeout_s=unit(5))
    try:
        with pytest.raises(TwilioRestError) as info:
            await bad.hangup("CA" + "2" * 32)
        assert info.value.status == 401 and info.value.code == 20003
        text = str(info.value)
        assert "\n" not in text and "wrong-token" not in text and "401" in text
        with pytest.raises(TwilioRestError, match="401"):
            await bad.send_sms(to="+1", from_="+2", body="x")
    finally:
        await bad.aclose()
    assert [r["status"] for r in standin.requests] == [401, 401]
    assert standin.hangups == []


async def test_server_errors_raise(standin: TwilioRestStandIn, rest: TwilioRest) -> None:
    standin.fail_next("hangup", status=500, code=20500, message="Internal Server Error")
    with pytest.raises(TwilioRestError, match="HTTP 500 code 20500") as info:
        await rest.hangup("CA" + "3" * 32)
    assert info.value.status == 500
    standin.fail_next("message", status=429, code=20429, message="Too Many Requests")
    with pytest.raises(TwilioRestError, match="429"):
        await rest.send_sms(to="+15005550001", from_="+15005550006", body="hi")


async def test_unreachable_host_is_a_clear_error() -> None:
    client = TwilioRest(SID, TOKEN, api_base="http://127.0.0.1:9", timeout_s=unit(5))
    try:
        with pytest.raises(TwilioRestError, match="cannot reach"):
            await client.send_sms(to="+1", from_="+2", body="x")
    finally:
        await client.aclose()


async def test_inline_twiml_over_4000_chars_is_refused_locally(rest: TwilioRest) -> None:
    with pytest.raises(ValueError, match="4000"):
        await rest.create_call(to="+1", from_="+2", twiml="<Response>" + "x" * 4000)


async def test_standin_validates_form_fields_like_twilio(standin: TwilioRestStandIn) -> None:
    async with httpx.AsyncClient(base_url=standin.base_url, auth=(SID, TOKEN)) as http:
        calls = f"/2010-04-01/Accounts/{SID}/Calls.json"
        msgs = f"/2010-04-01/Accounts/{SID}/Messages.json"
        cases = [
            (calls, {"From": "+2", "Twiml": "<Response/>"}, 21201),
            (calls, {"To": "+1", "Twiml": "<Response/>"}, 21213),
            (calls, {"To": "+1", "From": "+2"}, 21205),
            (msgs, {"From": "+2", "Body": "x"}, 21604),
            (msgs, {"To": "+1", "Body": "x"}, 21603),
            (msgs, {"To": "+1", "From": "+2"}, 21602),
        ]
        for path, form, code in cases:
            r = await http.post(path, data=form)
            assert r.status_code == 400, form
            body = r.json()
            assert (body["code"], body["status"]) == (code, 400) and body["message"]
        r = await http.post(calls, data={"To": "+1", "From": "+2", "Url": "https://x/y"})
        assert r.status_code == 201 and r.json()["status"] == "queued"
        r = await http.post(
            calls,
            data={"To": "+1", "From": "+2", "Url": "https://x/y"},
            auth=("AC" + "0" * 32, TOKEN),
        )
        assert r.status_code == 401
    assert standin.calls and standin.messages == []


def test_repr_hides_the_token() -> None:
    assert TOKEN not in repr(TwilioRest(SID, TOKEN))
