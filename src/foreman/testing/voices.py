"""Several synthetic voices for wake-phrase tests and the wake benchmark.

flite (Debian package) has four usable English voices: slt, rms, awb and kal16 (its `kal`
is a diphone voice too degraded for any recogniser). espeak-ng's formant voice is not used
here: offline recognisers cannot read it, so it measures nothing about the sentinel.
Audio is PCM16 LE mono at the rate asked for, cached per (text, voice, rate).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

from foreman.audio.wav import read_wav, resample_pcm16
from foreman.testing.speech import SpeechUnavailable

FLITE_VOICES = ("slt", "rms", "awb", "kal16")


def have_flite() -> bool:
    return shutil.which("flite") is not None


@functools.lru_cache(maxsize=1024)
def flite_speech(text: str, voice: str = "slt", sample_rate: int = 16000) -> bytes:
    """`text` spoken by flite's `voice`. Raises SpeechUnavailable without flite."""
    exe = shutil.which("flite")
    if exe is None:
        raise SpeechUnavailable("flite is not installed (apt-get install flite)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            [exe, "-voice", voice, "-t", text, "-o", str(out)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        pcm, rate = read_wav(out.read_bytes())
    return resample_pcm16(pcm, rate, sample_rate)


def with_silence(
    pcm16: bytes, sample_rate: int, before_ms: int = 300, after_ms: int = 700
) -> bytes:
    """`pcm16` with quiet room noise around it (a VAD needs the silence to end a segment;
    low noise rather than digital zeros, as a microphone gives)."""
    import numpy as np

    rng = np.random.default_rng(len(pcm16))

    def room(ms: int) -> bytes:
        n = sample_rate * ms // 1000
        return bytes(rng.normal(0, 12, n).astype("<i2").tobytes())

    return room(before_ms) + pcm16 + room(after_ms)
