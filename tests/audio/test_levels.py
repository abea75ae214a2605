"""Speech or silence by peak level, in every encoding the backends use."""

from __future__ import annotations

import numpy as np

from foreman.audio import g711
from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K
from foreman.audio.levels import SILENCE_PEAK, is_silent, peak


def test_digital_silence_is_silent_in_every_encoding() -> None:
    assert peak(b"\xff" * 160, PCMU_8K) == 0 and peak(b"\x7f" * 160, PCMU_8K) == 0
    assert is_silent(b"\xd5" * 160, PCMA_8K)
    assert is_silent(b"\x00\x00" * 480, PCM16_24K) and peak(b"", PCM16_24K) == 0


def test_a_tone_is_not_silent_and_its_peak_survives_g711() -> None:
    t = np.arange(800) / 8000
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    assert abs(peak(pcm, PCM16_24K) - 8000) < 10
    assert abs(peak(g711.pcm16_to_ulaw(pcm), PCMU_8K) - 8000) < 300
    assert abs(peak(g711.pcm16_to_alaw(pcm), PCMA_8K) - 8000) < 300
    quiet = (np.full(800, SILENCE_PEAK - 1)).astype("<i2").tobytes()
    assert is_silent(quiet, PCM16_24K) and not is_silent(pcm, PCM16_24K)


def test_an_odd_byte_of_pcm16_is_ignored() -> None:
    assert peak(b"\x00\x10\x00", PCM16_24K) == 4096
