"""Hostile or unusual fields in a signed voice webhook: a SIP caller (a long `From`) is a
caller like any other, a field Twilio never sends is refused with a one-line 400, and no
input ends in a server error."""

from __future__ import annotations

import httpx
import pytest
from twilio_app import (
    ACCOUNT,
    http_to_ws,
    make_app,
    new_call_sid,
    parse_twiml,
    settings,
    signed_post,
    voice_form,
    ws_headers,
)
from websockets.asyncio.client import connect

from foreman.config import IdentityConfig
from foreman.protocols.twilio.caller import TwilioCallerStream
from foreman.testing.fake_backend import FakeBackendFactory
from foreman.testing.server import serve_app

pytestmark = pytest.mark.e2e

# A SIP caller's From is a URI, and a long one does not fit one TwiML <Parameter> (name plus
# value under 500 characters, https://www.twilio.com/docs/voice/twiml/stream#parameter).
SIP_CALLER = "sip:" + "alice.example." * 40 + "x@pbx.example.com;transport=tls"


async def test_a_sip_caller_with_a_long_from_gets_through_with_its_whole_uri() -> None:
    assert len(SIP_CALLER) > 500
    factory = FakeBackendFactory()
    s = settings().replace(identity=IdentityConfig(owner_numbers=[SIP_CALLER]))
    app = make_app(s, factory)
    sid = new_call_sid(70)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/twilio/voice", **signed_post(voice_form(sid, SIP_CALLER)))
        assert r.status_code == 200, r.text
        _, params = parse_twiml(r.text)
        assert all(len(name) + len(value) < 500 for name, value in params.items())
        wire = TwilioCallerStream()
        url = http_to_ws(base) + "/twilio/media"
        async with connect(url, additional_headers=ws_headers()) as ws:
            await ws.send(wire.connected())
            await ws.send(
                wire.start(
                    stream_sid="MZ" + sid[2:],
                    call_sid=sid,
                    account_sid=ACCOUNT,
                    custom_parameters=params,
                )
            )
            backend = await factory.wait_created(1)
            call = app.state.twilio.live_call(sid)
            assert call is not None
            # The whole URI arrived: the configured SIP owner is recognised as the owner.
            assert call.ctx.caller_id == SIP_CALLER and str(call.ctx.role) == "owner"
            assert backend.options is not None and SIP_CALLER in backend.options.instructions
            await ws.send(wire.stop())
            await ws.wait_closed()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("CallSid", "CA" + "b" * 600, "CallSid"),
        ("CallSid", "CA" + "0" * 31 + "g", "CallSid"),
        ("CallSid", "", "CallSid"),
        ("From", "+1555\x00000123", "From"),
        ("To", "sip:" + "x" * 5000 + "@example.com", "To"),
    ],
)
async def test_a_field_twilio_never_sends_is_a_one_line_400(
    field: str, value: str, reason: str
) -> None:
    app = make_app(settings(), FakeBackendFactory())
    form = voice_form(new_call_sid(71))
    form[field] = value
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/twilio/voice", **signed_post(form))
        assert r.status_code == 400, r.text
        assert reason in r.text and "\n" not in r.text.strip() and len(r.text) < 200
        # Nothing was issued for it: the genuine webhook of the call still works.
        ok = await http.post("/twilio/voice", **signed_post(voice_form(new_call_sid(72))))
        assert ok.status_code == 200


async def test_a_refused_webhook_issues_no_stream_token() -> None:
    app = make_app(settings(), FakeBackendFactory())
    sid = new_call_sid(73)
    form = voice_form(sid)
    form["To"] = "sip:" + "x" * 5000 + "@example.com"
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        assert (await http.post("/twilio/voice", **signed_post(form))).status_code == 400
        # The same call's corrected webhook is answered normally (no token was burnt).
        r = await http.post("/twilio/voice", **signed_post(voice_form(sid)))
        assert r.status_code == 200 and parse_twiml(r.text)[1]["call_sid"] == sid
