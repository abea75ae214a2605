"""`foreman serve` on a machine without sound (a phone-line server): no sounddevice package,
no device at all, or a microphone PortAudio cannot open. The desk says why in one log line
and in `GET /api/wake/status`; the server keeps answering."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.config import settings_from_dict
from foreman.desk import service
from foreman.io.sound import Device, SoundUnavailable
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

MIC = Device(0, "USB mic", "ALSA", inputs=1, outputs=0, default_rate=48000, default_input=True)
SPEAKER = Device(1, "Speakers", "ALSA", inputs=0, outputs=2, default_rate=48000)


class UnopenableCapture:
    """A microphone that is listed but cannot be opened (busy, unplugged since listing)."""

    def __init__(self, device: Device, rate: int, block_ms: int = 20) -> None:
        self.device = device

    def start(self, deliver: Any) -> None:
        raise SoundUnavailable(f"PortAudio cannot open {self.device.name!r}: device unavailable")

    def stop(self) -> None:
        raise AssertionError("a capture that never started is never stopped")


def without_sounddevice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # `import sounddevice` fails


def without_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "list_devices", lambda: [])


def with_a_microphone_that_will_not_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "list_devices", lambda: [MIC, SPEAKER])
    monkeypatch.setattr(service, "Capture", UnopenableCapture)


@contextlib.asynccontextmanager
async def served(tmp_path: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    s = settings_from_dict(
        {
            "realtime": {"api_key_hosts": ["127.0.0.1"]},
            # A recogniser that needs nothing at start-up: the desk's sound is under test.
            "voice": {"wake_detector": "openai", "transcription_base_url": "http://127.0.0.1:9"},
            "storage": {"db_path": str(tmp_path / "f.db")},
        }
    )
    s = s.replace(realtime=s.realtime.model_copy(update={"api_key": SecretStr("sk-test")}))
    assert s.audio.enabled and s.voice.wake_enabled  # the defaults: use sound when it is there
    app = create_app(s)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(10)) as api:
        yield api, app


@dataclass(frozen=True)
class NoSound:
    setup: Callable[[pytest.MonkeyPatch], None]
    level: int
    line: str
    device: str | None  # what the wake status names


CASES = [
    # Normal on a phone-line server: said quietly, and in the wake status.
    NoSound(without_sounddevice, logging.DEBUG, "desk audio off: sounddevice is not", None),
    NoSound(without_devices, logging.DEBUG, "desk audio off: no audio input device found", None),
    NoSound(
        with_a_microphone_that_will_not_open,
        logging.WARNING,
        "microphone off: PortAudio cannot open 'USB mic': device unavailable",
        "USB mic",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.setup.__name__)
async def test_serve_without_sound_logs_one_line_and_keeps_answering(
    case: NoSound,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    case.setup(monkeypatch)
    caplog.set_level(logging.DEBUG, logger="foreman.desk")
    async with served(tmp_path) as (api, app):
        # The first answer comes after start-up (the desk's start included): the server serves.
        assert (await api.get("/api/health")).status_code == 200
        desk = [r for r in caplog.records if r.name == "foreman.desk"]
        assert len(desk) == 1, [r.getMessage() for r in desk]
        message = desk[0].getMessage()
        assert desk[0].levelno == case.level and message.startswith(case.line)
        assert "\n" not in message
        realtime = await api.get("/api/realtime/status")
        assert realtime.status_code == 200 and realtime.json()["active"] is False
        wake = (await api.get("/api/wake/status")).json()
        assert wake["listening"] is False and wake["last_error"] in message
        assert wake["device"] == case.device
        # No voice session can claim a microphone that is not there.
        assert (app.state.sessions.desk_audio is None) == (case.device is None)
