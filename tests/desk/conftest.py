"""A private PulseAudio null sink per test that needs sound devices: the microphone is the
sink's monitor, so it hears what the speaker plays and what a test plays into the sink."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from foreman.testing.pulse import PulseNullSink, have_pulseaudio


@pytest.fixture
def pulse(monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseNullSink]:
    if not have_pulseaudio():
        pytest.skip("PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils)")
    try:
        from foreman.io.sound import SoundUnavailable, sounddevice

        sounddevice()
    except SoundUnavailable as exc:
        pytest.skip(str(exc))
    with PulseNullSink() as sink:
        monkeypatch.setenv("PULSE_SERVER", sink.server)
        yield sink


def close_up(pcm16: bytes, drive: float = 3.0) -> bytes:
    """Speech as from someone close to the microphone: loud, softly limited."""
    x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
    return (np.tanh(drive * x) * 30000).astype("<i2").tobytes()


def level_of(pcm16: bytes) -> float:
    from foreman.audio.echo_gate import level_db

    return level_db(pcm16)
