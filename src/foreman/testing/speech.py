"""Real synthesized speech for tests, benchmarks and the mock server.

espeak-ng (Debian package) renders text to a WAV at 22050 Hz; it is resampled in code to the
rate asked for. Results are cached per (text, rate, voice) for the life of the process.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave

import numpy as np
import soxr


class SpeechUnavailable(RuntimeError):
    """espeak-ng is not installed."""


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


@functools.lru_cache(maxsize=256)
def synthesize(
    text: str, sample_rate: int = 24000, voice: str = "en-us", speed: int = 170
) -> bytes:
    """PCM16 little-endian mono speech for `text` at `sample_rate`. Raises SpeechUnavailable."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechUnavailable("espeak-ng is not installed (apt-get install espeak-ng)")
    out = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    pcm = np.frombuffer(raw, dtype="<i2")
    if rate != sample_rate:
        pcm = soxr.resample(pcm, rate, sample_rate, quality="HQ").astype("<i2")
    return bytes(pcm.tobytes())


def tone(freq_hz: float, ms: int, sample_rate: int = 24000, amplitude: int = 8000) -> bytes:
    """A sine tone as PCM16 LE (for cases where speech is not the point)."""
    n = sample_rate * ms // 1000
    t = np.arange(n) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype("<i2").tobytes()
