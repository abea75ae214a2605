"""Shared helpers: settings, an app with the Twilio routes, signed requests."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from fastapi import FastAPI
from pydantic import SecretStr

from foreman.api.routes_twilio import router
from foreman.bus import EventBus
from foreman.config import IdentityConfig, RealtimeConfig, Settings, TwilioConfig
from foreman.phone.bridge import build_phone_services
from foreman.protocols.twilio.signature import compute_signature
from foreman.session.registry import SessionRegistry

ACCOUNT = "AC" + "a" * 32
TOKEN = "twilio-auth-token-for-tests"
PUBLIC = "https://voice.example.com"
OWNER = "+15550000100"
# The fake backends never dial it; a loopback endpoint needs no key, so calls are not refused
# for want of one before the backend is made.
LOOPBACK_MODEL = "ws://127.0.0.1:9/v1/realtime"


def settings(**twilio: Any) -> Settings:
    tw = dict(
        account_sid=ACCOUNT,
        auth_token=SecretStr(TOKEN),
        public_url=PUBLIC,
        from_number="+15550009999",
    )
    tw.update(twilio)
    return Settings(
        realtime=RealtimeConfig(endpoint=LOOPBACK_MODEL),
        twilio=TwilioConfig(**tw),
        identity=IdentityConfig(owner_numbers=[OWNER], contacts={"Ann": "+15550000111"}),
    )


def make_app(s: Settings, factory: Any, *, rest: Any = None, dispatcher: Any = None) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    bus = EventBus()
    registry = SessionRegistry(s, bus, factory, tools=dispatcher, catalog=dispatcher)
    app.state.sessions = registry
    app.state.bus = bus
    app.state.twilio = build_phone_services(
        s, bus, factory, registry, tools=dispatcher, catalog=dispatcher, rest=rest
    )
    return app


def voice_form(call_sid: str, caller: str = "+15550000123") -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": "+15550009999",
        "Caller": caller,
        "Direction": "inbound",
        "From": caller,
        "To": "+15550009999",
    }


def signed_post(form: dict[str, str], url: str = PUBLIC + "/twilio/voice") -> dict[str, Any]:
    return {
        "content": urlencode(form),
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": compute_signature(TOKEN, url, form),
        },
    }


def ws_headers(url: str = "wss://voice.example.com/twilio/media") -> dict[str, str]:
    return {"X-Twilio-Signature": compute_signature(TOKEN, url, {})}


def parse_twiml(xml: str) -> tuple[str, dict[str, str]]:
    root = ElementTree.fromstring(xml)
    stream = root.find("./Connect/Stream")
    assert stream is not None, xml
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), params


def new_call_sid(n: int) -> str:
    return "CA" + f"{n:032x}"


def http_to_ws(base: str) -> str:
    return re.sub(r"^http", "ws", base)
