"""WAV files as bytes: PCM16 mono in and out, so a person can play what the assistant said
or give a caller something to say. Pure: the caller reads and writes the files.

Reading accepts what Python's `wave` module reads (integer PCM: 8, 16, 24 or 32 bits, any
rate, any number of channels; https://docs.python.org/3/library/wave.html): channels are
averaged to mono and samples scaled to 16 bits. Anything else (float, G.711 or extensible
WAVs on older Pythons) is an `AudioFormatError` whose message says how to convert it.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import numpy.typing as npt
import soxr

from foreman.audio.g711 import alaw_to_pcm16, ulaw_to_pcm16
from foreman.exceptions import AudioFormatError

__all__ = ["pcm16_of", "read_wav", "resample_pcm16", "write_wav"]

CONVERT_HINT = "convert it to 16-bit PCM first, e.g. `sox IN.wav -b 16 -c 1 OUT.wav`"


def write_wav(pcm16: bytes, sample_rate: int) -> bytes:
    """A WAV file (16-bit PCM, mono, `sample_rate` Hz) holding `pcm16` (little-endian)."""
    if sample_rate <= 0:
        raise AudioFormatError(f"sample rate must be positive, got {sample_rate}")
    if len(pcm16) % 2:
        raise AudioFormatError("PCM16 audio must be a whole number of 2-byte samples")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm16)
    return out.getvalue()


def read_wav(data: bytes) -> tuple[bytes, int]:
    """(PCM16 little-endian mono samples, sample rate) of a WAV file's bytes.
    Raises AudioFormatError (one line) for anything that is not an integer PCM WAV."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"not a PCM WAV file ({exc}); {CONVERT_HINT}") from None
    if width not in (1, 2, 3, 4):
        raise AudioFormatError(f"{width * 8}-bit samples are not supported; {CONVERT_HINT}")
    if rate <= 0 or channels <= 0:
        raise AudioFormatError("the WAV header names no sample rate or no channels")
    samples = _to_int32(frames, width).reshape(-1, channels)
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    return _to_int16(mono, width), rate


def _to_int32(frames: bytes, width: int) -> npt.NDArray[np.int32]:
    usable = len(frames) - len(frames) % width
    raw = np.frombuffer(frames[:usable], dtype=np.uint8)
    if width == 1:  # 8-bit WAV samples are unsigned
        return raw.astype(np.int32) - 128
    if width == 3:  # little-endian 24-bit: sign-extend through the top byte
        b = raw.reshape(-1, 3).astype(np.int32)
        return ((b[:, 2] << 24) | (b[:, 1] << 16) | (b[:, 0] << 8)) >> 8
    dtype = "<i2" if width == 2 else "<i4"
    return np.frombuffer(frames[:usable], dtype=dtype).astype(np.int32)


def _to_int16(samples: npt.NDArray[np.float64] | npt.NDArray[np.int32], width: int) -> bytes:
    shift = {1: -8, 2: 0, 3: 8, 4: 16}[width]  # bits to drop (negative: to add)
    scaled = np.asarray(samples, dtype=np.float64) / float(2**shift)
    return np.clip(np.rint(scaled), -32768, 32767).astype("<i2").tobytes()


def resample_pcm16(pcm16: bytes, in_rate: int, out_rate: int) -> bytes:
    """A whole recording (PCM16 LE mono) from `in_rate` to `out_rate`; soxr's HQ filter."""
    if in_rate == out_rate:
        return pcm16
    x = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], dtype="<i2").astype(np.float32)
    y = np.asarray(soxr.resample(x, in_rate, out_rate, quality="HQ"), dtype=np.float64)
    return np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes()


def pcm16_of(audio: bytes, fmt: str) -> bytes:
    """`audio` in the config format `fmt` (`pcm16`, `g711_ulaw`, `g711_alaw`) as PCM16 LE."""
    if fmt == "pcm16":
        return audio[: len(audio) - len(audio) % 2]
    if fmt == "g711_ulaw":
        return ulaw_to_pcm16(audio)
    if fmt == "g711_alaw":
        return alaw_to_pcm16(audio)
    raise AudioFormatError(f"unknown audio format {fmt!r}; known: pcm16, g711_ulaw, g711_alaw")
