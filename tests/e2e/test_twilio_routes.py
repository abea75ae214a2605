"""The Twilio routes through a real uvicorn on loopback, with a FakeBackend behind them."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import httpx
import pytest
import websockets
from pydantic import SecretStr
from twilio_app import (
    ACCOUNT,
    OWNER,
    PUBLIC,
    TOKEN,
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

from foreman.io.twilio_rest import TwilioRest
from foreman.phone.clips import clip
from foreman.policy.context import Role
from foreman.testing.fake_backend import FakeBackendFactory
from foreman.testing.memory_twilio import twilio_start
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

pytestmark = pytest.mark.e2e


async def test_voice_webhook_checks_the_signature_and_answers_connect_stream() -> None:
    app = make_app(settings(), FakeBackendFactory())
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        form = voice_form(new_call_sid(1), caller=OWNER)
        r = await http.post(
            "/twilio/voice",
            content=signed_post(form)["content"],
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 403  # missing signature
        bad = signed_post(form)
        bad["headers"]["X-Twilio-Signature"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        assert (await http.post("/twilio/voice", **bad)).status_code == 403
        tampered = signed_post(form)
        tampered["content"] = tampered["content"].replace("ringing", "in-progress")
        assert (await http.post("/twilio/voice", **tampered)).status_code == 403
        r = await http.post("/twilio/voice", **signed_post(form))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
        url, params = parse_twiml(r.text)
        assert url == "wss://voice.example.com/twilio/media"
        assert params["caller"] == OWNER and params["call_sid"] == new_call_sid(1)
        assert params["direction"] == "inbound" and len(params["token"]) >= 32


async def test_signatures_off_is_allowed_with_a_loud_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        app = make_app(settings(validate_signatures=False), FakeBackendFactory())
    assert any("NOT authenticated" in r.message for r in caplog.records)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        form = voice_form(new_call_sid(2))
        r = await http.post(
            "/twilio/voice",
            content=signed_post(form)["content"],
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ({"auth_token": SecretStr("")}, ["twilio.auth_token (or TWILIO_AUTH_TOKEN)"]),
        ({"public_url": ""}, ["twilio.public_url"]),
        (
            {"auth_token": SecretStr(""), "public_url": ""},
            ["twilio.auth_token (or TWILIO_AUTH_TOKEN)", "twilio.public_url"],
        ),
    ],
)
async def test_without_twilio_settings_calls_are_answered_503_naming_them(
    unset: dict[str, object], named: list[str]
) -> None:
    factory = FakeBackendFactory()
    app = make_app(settings(**unset), factory)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/twilio/voice", **signed_post(voice_form(new_call_sid(3))))
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/plain")
        assert r.text == (
            f"phone calls are not configured in this server: set {', '.join(named)} "
            "(see docs/phone.md)"
        )
        with pytest.raises(websockets.InvalidStatus) as err:
            async with connect(http_to_ws(base) + "/twilio/media", additional_headers=ws_headers()):
                pass
        assert err.value.response.status_code == 403
    assert factory.created == []


async def _dial(http: httpx.AsyncClient, n: int, caller: str = "+15550000123") -> dict[str, str]:
    r = await http.post("/twilio/voice", **signed_post(voice_form(new_call_sid(n), caller)))
    assert r.status_code == 200
    return parse_twiml(r.text)[1]


async def test_media_socket_refuses_a_bad_upgrade_signature_before_accepting() -> None:
    factory = FakeBackendFactory()
    app = make_app(settings(), factory)
    async with serve_app(app) as base:
        for headers in ({}, {"X-Twilio-Signature": "bm9wZQ=="}):
            with pytest.raises(websockets.InvalidStatus) as err:
                async with connect(http_to_ws(base) + "/twilio/media", additional_headers=headers):
                    pass
            assert err.value.response.status_code == 403
    assert factory.created == []


async def _start_stream(ws, call_sid: str, params: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    await ws.send(twilio_start("MZ" + call_sid[2:], call_sid, params))


async def test_token_is_single_use_and_checked_before_any_backend() -> None:
    factory = FakeBackendFactory()
    app = make_app(settings(), factory)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        params = await _dial(http, 3, caller=OWNER)
        ws_url = http_to_ws(base) + "/twilio/media"
        # A forged token: closed with 1008, no backend.
        async with connect(ws_url, additional_headers=ws_headers()) as ws:
            await _start_stream(ws, new_call_sid(3), {**params, "token": "forged"})
            await ws.wait_closed()
            assert ws.close_code == 1008
        assert factory.created == []
        # A genuine token works, once.
        params = await _dial(http, 4, caller=OWNER)
        async with connect(ws_url, additional_headers=ws_headers()) as ws:
            await _start_stream(ws, new_call_sid(4), params)
            backend = await factory.wait_created(1)
            assert backend.options is not None
            call = app.state.twilio.live_call(new_call_sid(4))
            assert call is not None and call.ctx.role is Role.OWNER and call.ctx.verified
            await ws.send(json.dumps({"event": "stop", "streamSid": "x", "stop": {}}))
            await ws.wait_closed()
        # Reusing the same token for the same call: refused.
        async with connect(ws_url, additional_headers=ws_headers()) as ws:
            await _start_stream(ws, new_call_sid(4), params)
            await ws.wait_closed()
            assert ws.close_code == 1008
        # A token issued for another call: refused.
        other = await _dial(http, 5)
        async with connect(ws_url, additional_headers=ws_headers()) as ws:
            await _start_stream(ws, new_call_sid(6), other)
            await ws.wait_closed()
            assert ws.close_code == 1008
        assert len(factory.created) == 1
        rec = app.state.twilio.records.finished[-1]
        assert rec.call_sid == new_call_sid(4) and rec.reason == "caller hung up"
        listed = (await http.get("/api/calls")).json()
        assert listed["active"] == []
        assert listed["recent"][-1]["call_sid"] == new_call_sid(4)
        assert listed["recent"][-1]["role"] == "owner" and listed["recent"][-1]["from"] == OWNER


async def test_backend_start_failure_plays_the_apology_and_hangs_up_through_rest() -> None:
    factory = FakeBackendFactory(fail_start="connection refused by the model service")
    call_sid = new_call_sid(7)
    async with TwilioRestStandIn(ACCOUNT, TOKEN) as standin:
        standin.add_live_call(call_sid)
        app = make_app(settings(api_base=standin.base_url), factory)
        recorded = app.state.bus.subscribe(maxsize=1000, kinds=("call.recorded",))
        async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
            params = await _dial(http, 7)
            heard = bytearray()
            async with connect(
                http_to_ws(base) + "/twilio/media", additional_headers=ws_headers()
            ) as ws:
                await _start_stream(ws, call_sid, params)
                seq = 2
                async for raw in ws:  # the caller's phone: audio plays, marks come back
                    msg = json.loads(raw)
                    if msg["event"] == "media":
                        heard += base64.b64decode(msg["media"]["payload"])
                    elif msg["event"] == "mark":
                        seq += 1
                        await ws.send(json.dumps({**msg, "sequenceNumber": str(seq)}))
                assert ws.close_code == 1000
            async with asyncio.timeout(unit(10)):  # written after the hang-up
                assert (await recorded.get()).data["call_sid"] == call_sid
        apology = clip("apology")  # padded to whole 20 ms frames
        assert heard.startswith(apology) and len(heard) - len(apology) < 160
        assert standin.hangups == [call_sid]
        rec = app.state.twilio.records.finished[-1]
        assert rec.reason == "backend failed to start: connection refused by the model service"
        assert factory.created[0].closed


async def test_place_call_validates_the_body_and_needs_twilio() -> None:
    app = make_app(settings(account_sid="", auth_token=""), FakeBackendFactory())
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/api/calls", json={"to": "not a number"})
        assert r.status_code == 422 and "to" in r.text
        r = await http.post("/api/calls", json={"to": "+15550000111", "extra": 1})
        assert r.status_code == 422
        r = await http.post("/api/calls", json={"to": "+15550000111"})
        assert r.status_code == 400
        assert "twilio.account_sid" in r.json()["detail"]


async def test_outbound_call_streams_back_through_the_same_bridge() -> None:
    factory = FakeBackendFactory()
    async with TwilioRestStandIn("AC" + "a" * 32, TOKEN) as standin:
        s = settings()
        rest = TwilioRest(s.twilio.account_sid, TOKEN, api_base=standin.base_url)
        app = make_app(s, factory, rest=rest)
        async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
            r = await http.post(
                "/api/calls", json={"to": "+15550000111", "purpose": "confirm Friday's delivery"}
            )
            assert r.status_code == 201, r.text
            call_sid = r.json()["call_sid"]
            (placed,) = await standin.wait_for("call")
            assert placed["sid"] == call_sid and placed["to"] == "+15550000111"
            url, params = parse_twiml(placed["twiml"])
            assert url == PUBLIC.replace("https", "wss") + "/twilio/media"
            assert "purpose" not in params  # kept server-side
            # Twilio connects the answered call's stream back to us.
            async with connect(
                http_to_ws(base) + "/twilio/media", additional_headers=ws_headers()
            ) as ws:
                await _start_stream(ws, call_sid, params)
                backend = await factory.wait_created(1)
                assert backend.options is not None
                assert "confirm Friday's delivery" in backend.options.instructions
                assert backend.options.greeting
                session = app.state.twilio.live_call(call_sid)
                assert session is not None and session.labels["direction"] == "outbound"
                assert session.ctx.role is Role.CONTACT and session.ctx.caller_name == "Ann"
                await ws.send(json.dumps({"event": "stop", "stop": {}}))
                await ws.wait_closed()
        await rest.aclose()


async def test_a_replayed_webhook_gets_no_second_stream() -> None:
    """Replaying one captured signed webhook must not mint a token per replay: a CallSid
    holds one live token (a retry replaces it), and none while its stream runs."""
    factory = FakeBackendFactory()
    app = make_app(settings(), factory)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        sid = new_call_sid(8)
        form = signed_post(voice_form(sid))
        replies = [await http.post("/twilio/voice", **form) for _ in range(50)]
        assert [r.status_code for r in replies] == [200] * 50  # Twilio may retry a webhook
        tokens = [parse_twiml(r.text)[1]["token"] for r in replies]
        ws_url = http_to_ws(base) + "/twilio/media"
        async with connect(ws_url, additional_headers=ws_headers()) as ws:  # an older token
            await _start_stream(ws, sid, parse_twiml(replies[0].text)[1])
            await ws.wait_closed()
            assert ws.close_code == 1008
        async with connect(ws_url, additional_headers=ws_headers()) as ws:  # the live one
            await _start_stream(ws, sid, parse_twiml(replies[-1].text)[1])
            await factory.wait_created(1)
            replay = await http.post("/twilio/voice", **form)
            assert replay.status_code == 409  # the call has its stream: no token at all
            await ws.send(json.dumps({"event": "stop", "streamSid": "x", "stop": {}}))
            await ws.wait_closed()
        assert len(set(tokens)) == 50 and len(factory.created) == 1
