"""The control API through the real app, served by uvicorn, with the real OpenAI backend
talking to the bundled mock Realtime server over loopback."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.config import Settings, settings_from_dict
from foreman.testing.mock_realtime import Faults, Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit


def make_settings(endpoint: str = "wss://api.openai.com/v1/realtime", **server: object) -> Settings:
    s = settings_from_dict(
        {"realtime": {"endpoint": endpoint, "api_key_hosts": ["127.0.0.1"]}, "server": dict(server)}
    )
    return s.replace(
        realtime=s.realtime.model_copy(update={"api_key": SecretStr("sk-test-not-real")})
    )


@pytest_asyncio.fixture
async def mock() -> AsyncIterator[MockRealtimeServer]:
    scenario = Scenario([Rule(Match.user_text("hello"), Reply.say("Hi there, I am the mock."))])
    async with MockRealtimeServer(scenario) as server:
        yield server


@pytest_asyncio.fixture
async def api(mock: MockRealtimeServer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(mock.url))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(10)) as c:
        yield c


async def test_start_status_say_stop_against_the_mock(
    api: httpx.AsyncClient, mock: MockRealtimeServer
) -> None:
    r = await api.post("/api/realtime/start", json={"model": "gpt-realtime-2.1-mini"})
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["active"] is True and st["model"] == "gpt-realtime-2.1-mini"
    assert st["session_id"].startswith("desk-")  # one id: Foreman's own
    assert st["provider_session_id"].startswith("sess_")  # the provider's, labelled
    assert st["endpoint_host"].startswith("127.0.0.1:")
    assert st["transport"] == "websocket" and st["mode"] == "voice"
    session = mock.sessions[-1]
    assert session.model == "gpt-realtime-2.1-mini"

    lines = []
    async with api.stream("POST", "/api/realtime/say", json={"text": "hello"}) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line:
                lines.append(json.loads(line))
    transcript = "".join(p.get("delta", "") for p in lines)
    assert transcript == "Hi there, I am the mock."
    assert lines[-1]["done"] is True and lines[-1]["status"] == "completed"
    # The turn went out as a user text item plus response.create, in that order.
    kinds = [e["type"] for e in session.received]
    assert kinds[0] == "session.update"
    assert kinds.index("conversation.item.create") < kinds.index("response.create")

    st = (await api.get("/api/realtime/status")).json()
    assert st["counters"]["events_in"] > 5 and st["counters"]["responses"] == 1

    r = await api.post("/api/realtime/stop")
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await api.post("/api/realtime/stop")).json()["active"] is False  # idempotent
    assert (await api.get("/api/realtime/status")).json()["mode"] == "text"


async def test_second_start_is_409(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/realtime/start")).status_code == 200
    r = await api.post("/api/realtime/start")
    assert r.status_code == 409 and "already active" in r.json()["detail"]
    await api.post("/api/realtime/stop")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"modle": "x"}, "modle"),
        ({"audio": {"in_sr": 11025}}, "in_sr"),
        ({"transport": "carrier-pigeon"}, "transport"),
        ({"instructions": 5}, "instructions"),
    ],
)
async def test_bad_body_is_422_naming_the_field(
    api: httpx.AsyncClient, body: dict, field: str
) -> None:
    r = await api.post("/api/realtime/start", json=body)
    assert r.status_code == 422
    assert any(field in map(str, err["loc"]) for err in r.json()["detail"])


async def test_webrtc_is_a_friendly_400(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/realtime/start", json={"transport": "webrtc"})
    assert r.status_code == 400 and "not supported yet" in r.json()["detail"]


async def test_unknown_audio_format_is_400_listing_valid_ones(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/realtime/start", json={"audio": {"out_format": "mp3"}})
    assert r.status_code == 400 and "g711_ulaw" in r.json()["detail"]


async def test_no_key_against_openai_tells_the_user_what_to_do() -> None:
    settings = make_settings()
    settings = settings.replace(
        realtime=settings.realtime.model_copy(update={"api_key": SecretStr("")}),
        local=settings.local.model_copy(update={"use": "never"}),  # else: the offline engine
    )
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.post("/api/realtime/start")
        assert r.status_code == 400
        assert "OPENAI_API_KEY" in r.json()["detail"] and "mock-realtime" in r.json()["detail"]
        assert (await c.get("/api/realtime/status")).json()["active"] is False


async def test_realtime_disabled_refuses_a_start_without_dialling(
    mock: MockRealtimeServer,
) -> None:
    settings = make_settings(mock.url)
    settings = settings.replace(realtime=settings.realtime.model_copy(update={"enabled": False}))
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.post("/api/realtime/start")
        assert r.status_code == 400
        detail = r.json()["detail"]
        assert "realtime.enabled" in detail and "\n" not in detail
        assert (await c.get("/api/realtime/status")).json()["active"] is False
    assert mock.sessions == []  # refused before any connection to the model


async def test_refused_connection_is_a_one_line_last_error(api: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        r = await api.post(
            "/api/realtime/start", json={"endpoint": f"ws://127.0.0.1:{port}/v1/realtime"}
        )
    assert r.status_code == 502
    st = (await api.get("/api/realtime/status")).json()
    assert st["active"] is False
    assert st["last_error"] == f"127.0.0.1:{port}: connection refused"


async def test_401_shows_as_last_error_without_the_key() -> None:
    async with MockRealtimeServer(api_key="sk-the-right-one") as mock:
        app = create_app(make_settings(mock.url))
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as c:
            r = await c.post("/api/realtime/start")
            assert r.status_code == 502
            err = (await c.get("/api/realtime/status")).json()["last_error"]
    assert "HTTP 401" in err and "the OPENAI_API_KEY `foreman serve` runs with" in err
    assert "sk-test" not in err and "\n" not in err


async def test_server_error_at_start_is_reported() -> None:
    faults = Faults(
        error_on={
            "session.update": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Invalid model 'nope'.",
            }
        }
    )
    async with (
        MockRealtimeServer(faults=faults) as mock,
        serve_app(create_app(make_settings(mock.url))) as url,
        httpx.AsyncClient(base_url=url) as c,
    ):
        r = await c.post("/api/realtime/start")
        assert r.status_code == 502
        err = (await c.get("/api/realtime/status")).json()["last_error"]
    assert err == "server error (invalid_value): Invalid model 'nope'."


async def test_session_expiry_without_recovery_ends_the_session_with_last_error() -> None:
    async with MockRealtimeServer(faults=Faults(session_time_limit_s=0.3)) as mock:
        settings = make_settings(mock.url)
        recovery = settings.realtime.recovery.model_copy(update={"reconnect": False})
        app = create_app(
            settings.replace(realtime=settings.realtime.model_copy(update={"recovery": recovery}))
        )
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as c:
            assert (await c.post("/api/realtime/start")).status_code == 200
            sub = app.state.bus.subscribe()
            while (await sub.get()).kind != "session.ended":
                pass
            st = (await c.get("/api/realtime/status")).json()
    assert st["active"] is False
    assert "session_expired" in st["last_error"]


async def test_a_socket_that_keeps_dropping_ends_the_session_with_last_error() -> None:
    # Every connection drops: reconnects flap until the window is spent.
    async with MockRealtimeServer(faults=Faults(drop_after_events=2)) as mock:
        settings = make_settings(mock.url)
        recovery = settings.realtime.recovery.model_copy(update={"reconnect_window_s": 1.0})
        app = create_app(
            settings.replace(realtime=settings.realtime.model_copy(update={"recovery": recovery}))
        )
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as c:
            sub = app.state.bus.subscribe()
            r = await c.post("/api/realtime/start")
            if r.status_code == 200:  # the drop may land before or after session.updated
                while (await sub.get()).kind != "session.ended":
                    pass
            st = (await c.get("/api/realtime/status")).json()
    assert st["active"] is False
    assert "connection" in st["last_error"]
    assert "no new model session within 1 s" in st["last_error"] or len(mock.sessions) == 1


async def test_openapi_docs_are_served(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert "/api/realtime/start" in spec["paths"]
    assert (await api.get("/docs")).status_code == 200


async def test_api_token_is_enforced_when_set() -> None:
    settings = make_settings(api_token="s3cret-token")
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as c:
        assert (await c.get("/api/realtime/status")).status_code == 401
        ok = await c.get("/api/realtime/status", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        bad = await c.get("/api/realtime/status", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert (await c.get("/api/health")).status_code == 200


async def test_validation_errors_never_echo_the_input(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/realtime/start", json={"endpoint": {"key": "sk-live-secret-value"}})
    assert r.status_code == 422
    assert "sk-live-secret-value" not in r.text
    assert r.json()["detail"][0]["loc"] == ["body", "endpoint"]
    bad = await api.post(
        "/api/realtime/start",
        content=b'{"model": "\x80"}',
        headers={"content-type": "application/json"},
    )
    assert bad.status_code in (400, 422)  # not a crash on bytes that are not UTF-8


async def test_the_api_key_never_reaches_logs_or_responses(
    mock: MockRealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(make_settings(mock.url))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as c:
        bodies = [(await c.post("/api/realtime/start")).text]
        async with c.stream("POST", "/api/realtime/say", json={"text": "hello"}) as r:
            bodies.append((await r.aread()).decode())
        bodies.append((await c.get("/api/realtime/status")).text)
        bodies.append((await c.get("/openapi.json")).text)
        bodies.append((await c.post("/api/realtime/stop")).text)
    assert mock.sessions[-1].received  # the key was really used for a session
    text = "\n".join(bodies) + "\n".join(r.getMessage() for r in caplog.records)
    assert "sk-test-not-real" not in text
