"""Real synthesized speech for tests, benchmarks, the mock server and `foreman fake-call`.

espeak-ng (Debian package) renders text to a WAV at 22050 Hz; it is resampled in code to the
rate asked for. Results are cached per (text, rate, voice) for the life of the process.
`speak` falls back to flite; `caller_sentence` to a recording shipped in this package, so a
fake caller can always say something.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
import wave
from importlib import resources
from pathlib import Path

import numpy as np
import soxr

from foreman.audio.wav import read_wav, resample_pcm16

# What the fake caller says by default; `caller_sentence.wav` in this package is this sentence
# as espeak-ng speaks it at 8 kHz (for machines with no synthesizer).
CALLER_SENTENCE = "Hello, can you hear me?"
CALLER_SENTENCE_WAV = "caller_sentence.wav"


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


def trim_silence(pcm16: bytes, level: int = 300) -> bytes:
    """Speech without the synthesizer's leading and trailing silence (samples under `level`),
    for tests that place pauses of exact lengths between phrases."""
    samples = np.frombuffer(pcm16, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > level)
    return samples[loud[0] : loud[-1] + 1].tobytes() if loud.size else b""


def have_flite() -> bool:
    return shutil.which("flite") is not None


def speak(text: str, sample_rate: int = 8000) -> bytes:
    """PCM16 LE mono speech for `text`: espeak-ng, else flite. Raises SpeechUnavailable."""
    if have_espeak():
        return synthesize(text, sample_rate)
    exe = shutil.which("flite")
    if exe is None:
        raise SpeechUnavailable("neither espeak-ng nor flite is installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            [exe, "-t", text, "-o", str(out)], check=True, capture_output=True, timeout=30
        )
        pcm, rate = read_wav(out.read_bytes())
    return resample_pcm16(pcm, rate, sample_rate)


def caller_sentence(sample_rate: int = 8000) -> bytes:
    """`CALLER_SENTENCE` as PCM16 LE mono: synthesized when a synthesizer is installed, else
    the recording shipped with this package."""
    try:
        return speak(CALLER_SENTENCE, sample_rate)
    except SpeechUnavailable:
        pass
    data = resources.files("foreman.testing").joinpath(CALLER_SENTENCE_WAV).read_bytes()
    pcm, rate = read_wav(data)
    return resample_pcm16(pcm, rate, sample_rate)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words): the substitutions, insertions and deletions that turn
    `reference` into `hypothesis`, ignoring case and punctuation; sums over a corpus give its
    word error rate."""
    import re

    ref = re.findall(r"[a-z']+", reference.lower())
    hyp = re.findall(r"[a-z']+", hypothesis.lower())
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edits per reference word: how far a transcript is from what was said."""
    edits, words = word_errors(reference, hypothesis)
    return edits / max(1, words)
