"""The API's text session and the choice of backend on GPT-Live: `[realtime] api = "live"`
alone moves phone calls and the API session to Live; a text turn ends at `AssistantIdle`
with only its own reply; the key is sent only to listed hosts, and the hints name the Live
path."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from live_phone import live_phone_stack

from foreman import probe
from foreman.api.app import create_app
from foreman.backends.factory import make_backend_factory
from foreman.backends.openai_live import OpenAILiveBackend
from foreman.backends.openai_realtime import OpenAIRealtimeBackend
from foreman.cli import startup_notes
from foreman.config import settings_from_dict, voice_target
from foreman.exceptions import BackendError, ConfigError
from foreman.phone.bridge import lead_ms
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

SCENARIO = Scenario(
    [
        Rule(Match(instructions="Greet"), Reply.say("Hello.")),
        Rule(Match.user_text("hello"), Reply.say("Hi there.")),
    ]
)


@pytest.fixture
async def live_api() -> AsyncIterator[tuple[httpx.AsyncClient, MockRealtimeServer]]:
    async with MockRealtimeServer(SCENARIO) as mock:
        settings = settings_from_dict(
            {"realtime": {"api": "live", "endpoint": mock.url}, "live": {"endpoint": mock.live_url}}
        )
        async with (
            serve_app(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=unit(20)) as api,
        ):
            started = await api.post("/api/realtime/start")
            assert started.status_code == 200, started.text
            yield api, mock


async def test_a_text_turn_on_live_streams_its_reply_and_ends_at_idle(
    live_api: tuple[httpx.AsyncClient, MockRealtimeServer],
) -> None:
    api, mock = live_api
    async with api.stream("POST", "/api/realtime/say", json={"text": "hello"}) as resp:
        assert resp.status_code == 200
        pieces = [json.loads(line) async for line in resp.aiter_lines() if line]
    assert "".join(str(p.get("delta", "")) for p in pieces) == "Hi there."
    assert pieces[-1] == {"done": True, "transcript": "Hi there.", "status": "completed"}
    live = mock.live_sessions[0]
    typed = [e for e in live.received if e["type"] == "response.item.create"]
    assert typed[0]["item"]["content"] == [{"type": "input_text", "text": "hello"}]
    status = (await api.get("/api/realtime/status")).json()
    assert status["backend"] == "openai-live"
    assert status["provider_session_id"] == live.id
    assert set(status["usage"]) >= {"seconds", "cost_usd"}
    # a second turn hears only its own reply
    async with api.stream("POST", "/api/realtime/say", json={"text": "hello again"}) as resp:
        again = [json.loads(line) async for line in resp.aiter_lines() if line]
    assert again[-1]["transcript"] == "Hi there."


def test_the_factory_follows_the_config_and_nothing_else() -> None:
    realtime = settings_from_dict({})
    live = settings_from_dict({"realtime": {"api": "live"}})
    assert voice_target(realtime).endpoint == "wss://api.openai.com/v1/realtime"
    assert voice_target(live).endpoint == "wss://api.openai.com/v1/live/sessions"
    assert voice_target(live).model == "gpt-live-1"
    options = make_backend_factory  # the same options object goes to either factory
    from foreman.audio.formats import PCMU_8K
    from foreman.backends.interface import BackendOptions

    opts = BackendOptions("m", "ws://127.0.0.1:1/x", "marin", "", PCMU_8K, PCMU_8K)
    assert isinstance(options(realtime)(opts), OpenAIRealtimeBackend)
    backend = options(live)(opts)
    assert isinstance(backend, OpenAILiveBackend)
    caps = backend.capabilities
    assert caps.server_barge_in and caps.needs_continuous_input and not caps.turn_based
    assert lead_ms(400, caps) == 200 and lead_ms(400, OpenAIRealtimeBackend.capabilities) == 400


def test_live_config_is_strict_and_errors_are_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"realtime": {"api": "gpt-live"}})
    assert "realtime.api" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"live": {"turn_detection": {}}})
    assert "live.turn_detection" in str(info.value)
    with pytest.raises(ConfigError):
        settings_from_dict({"live": {"endpoint": "https://api.openai.com/v1/live/sessions"}})
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"live": {"rollover_margin_s": 0}})
    assert "live.rollover_margin_s" in str(info.value) and "\n" not in str(info.value)
    assert settings_from_dict({"live": {"rollover_margin_s": 90}}).live.rollover_margin_s == 90


def test_the_no_key_hint_names_the_live_path() -> None:
    cloud = {"local": {"use": "never"}}  # without a key the offline engine would take over
    notes = startup_notes(settings_from_dict({"realtime": {"api": "live"}, **cloud}))
    assert any("ws://127.0.0.1:9100/v1/live/sessions" in n for n in notes)
    notes = startup_notes(settings_from_dict(cloud))
    assert any("ws://127.0.0.1:9100/v1/realtime`" in n for n in notes)


async def test_no_key_start_on_live_names_the_live_mock_path() -> None:
    # The cloud path: without a key the offline engine would take the session instead.
    settings = settings_from_dict({"realtime": {"api": "live"}, "local": {"use": "never"}})
    async with (
        serve_app(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=unit(20)) as api,
    ):
        refused = await api.post("/api/realtime/start")
        assert refused.status_code >= 400
        assert "/v1/live/sessions" in refused.text


async def test_the_key_goes_only_to_listed_hosts_on_live() -> None:
    async with MockRealtimeServer(SCENARIO, api_key="sk-test") as mock:
        base = {
            "realtime": {"api": "live", "api_key": "sk-test"},
            "live": {"endpoint": mock.live_url},
        }
        # 127.0.0.1 is not in api_key_hosts: no key is sent, and the mock refuses it
        settings = settings_from_dict(base)
        backend = make_backend_factory(settings)(_options(mock.live_url))
        with pytest.raises(BackendError, match="HTTP 401"):
            await backend.start()
        await backend.close()
        listed = settings_from_dict(
            {**base, "realtime": {**base["realtime"], "api_key_hosts": ["127.0.0.1"]}}
        )
        backend = make_backend_factory(listed)(_options(mock.live_url))
        await backend.start()
        assert mock.live_sessions[-1].handshake_headers["authorization"] == "Bearer sk-test"
        await backend.close()


def _options(url: str):  # type: ignore[no-untyped-def]
    from foreman.audio.formats import PCMU_8K
    from foreman.backends.interface import BackendOptions

    return BackendOptions("gpt-live-1", url, "marin", "", PCMU_8K, PCMU_8K)


@pytest.mark.parametrize("api", ["realtime", "live"])
async def test_the_same_call_runs_on_either_api_by_config_alone(api: str) -> None:
    scenario = Scenario([Rule(Match(instructions="Greet"), Reply.say("Hello."))])
    async with live_phone_stack(scenario, api=api) as stack, stack.caller() as caller:
        await caller.dial()
        said = await stack.bus("session.transcript", lambda d: d["role"] == "assistant")
        assert said["text"] == "Hello."
        assert (len(stack.mock.live_sessions), len(stack.mock.sessions)) == (
            (1, 0) if api == "live" else (0, 1)
        )
        await caller.hangup()


async def test_the_desk_session_on_live_through_rt_probe(tmp_path: Path) -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        settings = settings_from_dict({"realtime": {"api": "live"}})
        async with serve_app(create_app(settings)) as url:

            async def rt_probe(*argv: str) -> tuple[int, str]:
                out = io.StringIO()
                code = await probe.run(
                    probe.build_parser().parse_args(["--server", url, *argv]), out
                )
                return code, out.getvalue()

            code, text = await rt_probe("start", mock.live_url)  # the Live URL, per start
            assert code == 0 and text.startswith("active"), text
            code, text = await rt_probe("say", "--wav", str(tmp_path / "r.wav"), "hello")
            assert code == 0 and text.strip() == "Hi there."
            assert (tmp_path / "r.wav").stat().st_size > 8000  # the spoken reply, as audio
            code, text = await rt_probe("--json", "stop")
            final = json.loads(text)
            assert final["active"] is False and final["backend"] == "openai-live"
            assert final["usage"]["final"] is True and final["usage"]["seconds"] > 0
