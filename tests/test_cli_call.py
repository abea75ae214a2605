"""`foreman call` places an outbound call through a running server and Twilio REST."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.cli import main
from foreman.config import settings_from_dict
from foreman.testing.server import free_port, serve_app
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

ACCOUNT = "AC" + "1" * 32
TOKEN = "tw-token-for-tests"


async def test_foreman_call_places_a_call_that_streams_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with TwilioRestStandIn(ACCOUNT, TOKEN) as rest:
        s = settings_from_dict({})
        s = s.replace(
            twilio=s.twilio.model_copy(
                update={
                    "account_sid": ACCOUNT,
                    "auth_token": SecretStr(TOKEN),
                    "api_base": rest.base_url,
                    "public_url": "https://voice.example.com",
                    "from_number": "+15550009999",
                }
            )
        )
        async with serve_app(create_app(s)) as url:
            code = await asyncio.to_thread(
                main,
                ["call", "+15551234567", "--purpose", "remind about the dentist", "--server", url],
            )
            assert code == 0
            calls = await rest.wait_for("call", timeout=unit(5))
    out = json.loads(capsys.readouterr().out)
    assert out["to"] == "+15551234567" and out["call_sid"].startswith("CA")
    call = calls[0]
    assert call["sid"] == out["call_sid"]
    assert call["to"] == "+15551234567" and call["from"] == "+15550009999"
    assert '<Stream url="wss://voice.example.com/twilio/media">' in call["twiml"]
    assert "remind about the dentist" not in call["twiml"]  # the purpose stays server-side


async def test_foreman_call_without_twilio_config_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with serve_app(create_app(settings_from_dict({}))) as url:
        code = await asyncio.to_thread(main, ["call", "+15551234567", "--server", url])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "400" in err and "twilio.account_sid" in err


async def test_foreman_call_with_a_bad_number_names_the_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with serve_app(create_app(settings_from_dict({}))) as url:
        code = await asyncio.to_thread(main, ["call", "5550100", "--server", url])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("foreman call: HTTP 422: to: String should match pattern")


def test_foreman_call_with_the_server_down(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["call", "+15551234567", "--server", url])
    assert code == 1
    err = capsys.readouterr().err
    assert err == f"foreman call: cannot reach foreman at {url} (is `foreman serve` running?)\n"
