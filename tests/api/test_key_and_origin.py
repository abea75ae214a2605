"""The API key never leaves for an endpoint the config file did not allow, and a loopback
server refuses requests that name another site (DNS rebinding, cross-site POSTs)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.api.hosts import host_name, origin_host
from foreman.config import Settings, settings_from_dict
from foreman.io.realtime_ws import key_allowed
from foreman.testing.mock_realtime import MockRealtimeServer
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

KEY = "sk-test-the-real-key"


def settings_with_key(**realtime: object) -> Settings:
    s = settings_from_dict({"realtime": dict(realtime)})
    return s.replace(realtime=s.realtime.model_copy(update={"api_key": SecretStr(KEY)}))


async def test_a_start_request_cannot_send_the_key_to_its_own_endpoint() -> None:
    # The configured endpoint is OpenAI; the request names another one (here a mock that
    # stands for an attacker's server): it is reached, but without the key.
    async with MockRealtimeServer() as thief:
        app = create_app(settings_with_key())
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(10)) as c:
            r = await c.post("/api/realtime/start", json={"endpoint": thief.url})
            assert r.status_code == 200, r.text
            await c.post("/api/realtime/stop")
    headers = thief.sessions[-1].handshake_headers
    assert "authorization" not in headers
    assert KEY not in repr(headers)


async def test_the_key_goes_to_a_host_the_config_file_lists() -> None:
    async with MockRealtimeServer(api_key=KEY) as mock:
        app = create_app(settings_with_key(endpoint=mock.url, api_key_hosts=["127.0.0.1"]))
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(10)) as c:
            r = await c.post("/api/realtime/start")
            assert r.status_code == 200, r.text
            await c.post("/api/realtime/stop")
    assert mock.sessions[-1].handshake_headers["authorization"] == f"Bearer {KEY}"


async def test_plain_ws_to_openai_is_refused_before_dialling() -> None:
    app = create_app(settings_with_key())
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(10)) as c:
        r = await c.post(
            "/api/realtime/start", json={"endpoint": "ws://api.openai.com/v1/realtime"}
        )
    assert r.status_code == 400
    assert "api_key_hosts" in r.json()["detail"] and KEY not in r.text


@pytest.mark.parametrize(
    ("endpoint", "hosts", "allowed"),
    [
        ("wss://api.openai.com/v1/realtime", ["api.openai.com"], True),
        ("wss://API.OpenAI.com./v1/realtime", ["api.openai.com"], True),
        ("ws://api.openai.com/v1/realtime", ["api.openai.com"], False),  # no TLS
        ("wss://api.openai.com.evil.example/v1", ["api.openai.com"], False),
        ("wss://evil.example/v1?h=api.openai.com", ["api.openai.com"], False),
        ("wss://api.openai.com@evil.example/v1", ["api.openai.com"], False),
        ("ws://127.0.0.1:9100/v1/realtime", ["127.0.0.1"], True),  # this machine, listed
        ("ws://127.0.0.1:9100/v1/realtime", ["api.openai.com"], False),  # not listed
        ("ws://proxy.internal/v1/realtime", ["proxy.internal"], False),  # listed, no TLS
        ("wss://[::1/v1", ["::1"], False),  # not a URL
        ("", ["api.openai.com"], False),
    ],
)
def test_key_allowed(endpoint: str, hosts: list[str], allowed: bool) -> None:
    assert key_allowed(endpoint, hosts) is allowed


# --- Host and Origin on a loopback bind ----------------------------------------------------
@pytest.fixture
def loopback_app() -> object:
    return create_app(
        settings_from_dict(
            {
                "server": {"allowed_hosts": ["foreman.lan"]},
                "twilio": {
                    "public_url": "https://voice.example.com",
                    "auth_token": "tw-token-for-host-tests",
                },
            }
        )
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Host": "localhost:8765"}, 200),
        ({"Host": "[::1]:8765"}, 200),
        ({"Host": "foreman.lan"}, 200),  # the operator's own name
        ({"Host": "rebind.attacker.example:8765"}, 403),  # DNS rebinding
        ({"Origin": "http://127.0.0.1:8765"}, 200),
        ({"Origin": "https://attacker.example"}, 403),  # cross-site POST
        ({"Origin": "null"}, 403),  # sandboxed frame or file:// page
    ],
)
async def test_loopback_server_answers_only_its_own_names(
    loopback_app: object, headers: dict[str, str], status: int
) -> None:
    async with serve_app(loopback_app) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.post("/api/realtime/stop", headers=headers)
    assert r.status_code == status, r.text
    if status == 403:
        assert "refused" in r.text or "not this server" in r.text


async def test_twilio_paths_keep_their_public_host(loopback_app: object) -> None:
    # A tunnel delivers Twilio's webhook under the public name; its signature is the check.
    async with serve_app(loopback_app) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.post("/twilio/voice", headers={"Host": "tunnel.example"}, data={"a": "b"})
    assert r.status_code == 403 and r.text == "invalid signature"


async def test_the_public_name_does_not_serve_the_api_without_a_token(
    loopback_app: object,
) -> None:
    # A tunnel (ngrok, cloudflared) forwards everything under the public name, not only
    # Twilio's paths: without a token, the API and its approvals must stay on loopback.
    async with serve_app(loopback_app) as url, httpx.AsyncClient(base_url=url) as c:
        for method, path in (("GET", "/api/approvals"), ("POST", "/api/realtime/stop")):
            r = await c.request(method, path, headers={"Host": "voice.example.com"})
            assert r.status_code == 403, r.text
            assert "api_token" in r.json()["detail"]
        r = await c.post("/twilio/voice", headers={"Host": "voice.example.com"}, data={"a": "b"})
    assert r.status_code == 403 and r.text == "invalid signature"  # Twilio's path still open


async def test_with_a_token_the_public_name_serves_the_api() -> None:
    s = settings_from_dict(
        {
            "server": {"api_token": "t0ken"},
            "twilio": {"public_url": "https://voice.example.com", "auth_token": "tw"},
        }
    )
    async with serve_app(create_app(s)) as url, httpx.AsyncClient(base_url=url) as c:
        headers = {"Host": "voice.example.com"}
        assert (await c.post("/api/realtime/stop", headers=headers)).status_code == 401
        headers["Authorization"] = "Bearer t0ken"
        assert (await c.post("/api/realtime/stop", headers=headers)).status_code == 200


async def test_a_rebinding_page_cannot_open_the_event_stream(loopback_app: object) -> None:
    async with serve_app(loopback_app) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.get("/api/events", headers={"Host": "rebind.attacker.example"})
    assert r.status_code == 403


async def test_public_bind_relies_on_its_token_not_on_host_names() -> None:
    s = settings_from_dict({"server": {"host": "0.0.0.0", "api_token": "t0ken"}})
    async with serve_app(create_app(s)) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.post(
            "/api/realtime/stop",
            headers={"Host": "foreman.example.com", "Authorization": "Bearer t0ken"},
        )
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("value", "name"),
    [("127.0.0.1:8765", "127.0.0.1"), ("[::1]:80", "::1"), ("LocalHost", "localhost")],
)
def test_host_name(value: str, name: str) -> None:
    assert host_name(value) == name


def test_origin_host() -> None:
    assert origin_host("http://127.0.0.1:8765") == "127.0.0.1"
    assert origin_host("null") is None
    assert origin_host("chrome-extension://abc") is None
