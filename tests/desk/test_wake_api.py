"""The wake API through the real app (uvicorn on loopback): a WAV fed to the sentinel is
segmented, sent to the transcription API (a loopback stand-in) and, when it is the phrase,
starts voice mode against the mock Realtime server; everything shows on the event bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.audio.wav import write_wav
from foreman.bus import EventBus
from foreman.config import settings_from_dict
from foreman.testing.mock_realtime import MockRealtimeServer, Scenario
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit
from foreman.testing.transcription_standin import TranscriptionStandIn
from foreman.testing.voices import flite_speech, have_flite, with_silence

pytestmark = pytest.mark.skipif(not have_flite(), reason="flite is not installed")


def wav_of(text: str, voice: str = "slt") -> bytes:
    return write_wav(with_silence(flite_speech(text, voice, 16000), 16000), 16000)


class Heard:
    """What the stand-in 'recognises': the next scripted text per request."""

    def __init__(self) -> None:
        self.script: list[str] = []

    def __call__(self, pcm16: bytes, rate: int, form: dict[str, str]) -> str:
        assert rate == 16000 and len(pcm16) > 16000  # a real segment of speech
        return self.script.pop(0)


@pytest_asyncio.fixture
async def served(tmp_path: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Heard, EventBus]]:
    heard = Heard()
    async with (
        MockRealtimeServer(Scenario([])) as mock,
        TranscriptionStandIn("sk-test", heard) as standin,
    ):
        s = settings_from_dict(
            {
                "realtime": {"endpoint": mock.url, "api_key_hosts": ["127.0.0.1"]},
                "voice": {"wake_detector": "openai", "transcription_base_url": standin.base_url},
                "audio": {"enabled": False},
                "storage": {"db_path": str(tmp_path / "f.db")},
            }
        )
        s = s.replace(realtime=s.realtime.model_copy(update={"api_key": SecretStr("sk-test")}))
        bus = EventBus()
        app = create_app(s, bus=bus)
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(20)) as c:
            yield c, heard, bus


async def test_the_phrase_fed_as_wav_starts_voice_and_stop_returns_to_text(
    served: tuple[httpx.AsyncClient, Heard, EventBus],
) -> None:
    api, heard, bus = served
    events = bus.subscribe(kinds=("wake.triggered", "mode", "wake.heard"))
    st = (await api.get("/api/wake/status")).json()
    assert st["enabled"] and st["detector"] == "openai" and st["mode"] == "text"
    assert st["device"] is None and not st["listening"]  # no microphone here
    heard.script = ["Hey Jim."]
    r = await api.post("/api/wake/feed", content=wav_of("hey jim"))
    assert r.status_code == 200, r.text
    assert r.json()["woke"] is False and r.json()["heard"] == ["Hey Jim."]
    assert r.json()["status"]["false_starts"] == 1
    heard.script = ["Hey Vim."]
    r = await api.post("/api/wake/feed", content=wav_of("hey vim"))
    body = r.json()
    assert body["woke"] is True and body["status"]["mode"] == "voice"
    assert body["status"]["triggers"] == 1 and body["status"]["last_trigger"]["text"] == "Hey Vim."
    assert (await api.get("/api/realtime/status")).json()["active"] is True
    assert (await events.get()).kind == "wake.heard"
    assert (await events.get()).kind == "wake.triggered"
    assert (await events.get()).data == {"mode": "voice"}
    # Voice mode: the sentinel is paused, a fed WAV is refused.
    assert (await api.post("/api/wake/feed", content=wav_of("hey vim"))).status_code == 409
    await api.post("/api/realtime/stop")
    assert (await events.get()).data == {"mode": "text"}
    assert (await api.get("/api/wake/status")).json()["mode"] == "text"


async def test_disable_enable_and_bad_bodies(
    served: tuple[httpx.AsyncClient, Heard, EventBus],
) -> None:
    api, _heard, bus = served
    events = bus.subscribe(kinds=("wake.changed",))
    off = (await api.post("/api/wake/disable")).json()
    assert off["enabled"] is False
    assert (await events.get()).data["enabled"] is False
    r = await api.post("/api/wake/feed", content=wav_of("hey vim"))
    assert r.status_code == 409 and "disabled" in r.json()["detail"]
    assert (await api.post("/api/wake/enable")).json()["enabled"] is True
    assert (await events.get()).data["enabled"] is True
    r = await api.post("/api/wake/feed", content=b"RIFF not really a wav")
    assert r.status_code == 400 and "WAV" in r.json()["detail"]
