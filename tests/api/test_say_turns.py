"""Text turns over the API cannot mix replies: one at a time (409 for a second), an abandoned
turn's reply is cancelled, the next turn hears only its own reply; a session that takes text
refuses a microphone rate; push-to-talk release has its own route."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from foreman.api.app import create_app
from foreman.config import settings_from_dict
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

STORY = "Once upon a time there was a very long story that took ages to tell. " * 4
SCENARIO = Scenario(
    [
        Rule(Match.user_text("story"), Reply.say(STORY, pace=1.0)),  # real-time: seconds long
        Rule(Match.user_text("hello"), Reply.say("Hi there.")),
    ]
)


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, MockRealtimeServer]]:
    async with MockRealtimeServer(SCENARIO) as mock:
        settings = settings_from_dict({"realtime": {"endpoint": mock.url}})
        async with (
            serve_app(create_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=unit(20)) as api,
        ):
            assert (await api.post("/api/realtime/start")).status_code == 200
            yield api, mock


async def read_say(api: httpx.AsyncClient, text: str) -> list[dict[str, object]]:
    async with api.stream("POST", "/api/realtime/say", json={"text": text}) as resp:
        assert resp.status_code == 200
        return [json.loads(line) async for line in resp.aiter_lines() if line]


async def test_a_second_concurrent_say_is_409(
    served: tuple[httpx.AsyncClient, MockRealtimeServer],
) -> None:
    api, _ = served
    async with api.stream("POST", "/api/realtime/say", json={"text": "tell a story"}) as first:
        lines = first.aiter_lines()
        assert "delta" in json.loads(await anext(lines))  # the first turn is under way
        second = await api.post("/api/realtime/say", json={"text": "hello"})
        assert second.status_code == 409 and "already running" in second.json()["detail"]


async def test_an_abandoned_turn_is_cancelled_and_the_next_hears_only_its_reply(
    served: tuple[httpx.AsyncClient, MockRealtimeServer],
) -> None:
    api, mock = served
    async with api.stream("POST", "/api/realtime/say", json={"text": "tell a story"}) as first:
        lines = first.aiter_lines()
        assert "delta" in json.loads(await anext(lines))
    # The client went away mid-reply: the server cancels that response.
    await mock.wait_for_client_event("response.cancel", timeout=unit(5))
    lines = await read_say(api, "hello")
    assert "".join(str(p.get("delta", "")) for p in lines) == "Hi there."
    assert lines[-1] == {"done": True, "transcript": "Hi there.", "status": "completed"}


async def test_say_can_stream_the_assistants_audio(
    served: tuple[httpx.AsyncClient, MockRealtimeServer],
) -> None:
    api, mock = served
    async with api.stream(
        "POST", "/api/realtime/say", json={"text": "hello", "audio": True}
    ) as resp:
        pieces = [json.loads(line) async for line in resp.aiter_lines() if line]
    audio = [p for p in pieces if "audio" in p]
    assert audio and {p["format"] for p in audio} == {"pcm16"}
    sent = b"".join(mock.sessions[-1].audio_sent.values())
    assert b"".join(base64.b64decode(str(p["audio"])) for p in audio) == sent


async def test_a_text_session_refuses_a_microphone_rate() -> None:
    async with MockRealtimeServer() as mock:
        settings = settings_from_dict({"realtime": {"endpoint": mock.url}})
        async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as api:
            r = await api.post("/api/realtime/start", json={"audio": {"in_sr": 16000}})
    assert r.status_code == 400 and "audio_in_hz" in r.json()["detail"]


async def test_end_turn_says_whether_the_session_detects_turns_itself() -> None:
    async with MockRealtimeServer() as mock:
        for turns, ended in (("server_vad", False), ("none", True)):
            settings = settings_from_dict(
                {"realtime": {"endpoint": mock.url, "turn_detection": {"type": turns}}}
            )
            async with (
                serve_app(create_app(settings)) as url,
                httpx.AsyncClient(base_url=url) as api,
            ):
                assert (await api.post("/api/realtime/end-turn")).status_code == 409  # no session
                assert (await api.post("/api/realtime/start")).status_code == 200
                r = await api.post("/api/realtime/end-turn")
                assert r.status_code == 200 and r.json() == {"ended": ended}
                await api.post("/api/realtime/stop")
        kinds = [e["type"] for e in mock.sessions[-1].received]
        assert "input_audio_buffer.commit" in kinds
        assert "input_audio_buffer.commit" not in [e["type"] for e in mock.sessions[0].received]
