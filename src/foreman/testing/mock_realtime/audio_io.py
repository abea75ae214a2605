"""Audio for the mock: decoding what the client appends, server VAD, synthesizing replies.

Everything here is plain computation on bytes (no sockets, no clock); the session calls it.
The codecs, resampler and VAD are Foreman's own audio toolkit (`foreman.audio`).
"""

from __future__ import annotations

import functools
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from foreman.audio import g711
from foreman.audio.convert import build_plan
from foreman.audio.formats import PCM16_24K, AudioFormat, Encoding
from foreman.audio.vad import EnergyVad
from foreman.protocols.realtime.wire_formats import format_from_wire
from foreman.testing.speech import SpeechUnavailable, synthesize, tone

_DECODERS = {
    Encoding.PCM16: None,
    Encoding.PCMU: g711.ulaw_to_pcm16,
    Encoding.PCMA: g711.alaw_to_pcm16,
}


def fmt_of(obj: Mapping[str, Any]) -> AudioFormat:
    """The AudioFormat of a GA format object (already validated by the schema)."""
    return format_from_wire(dict(obj))


def to_pcm16(data: bytes, fmt: AudioFormat) -> bytes:
    """PCM16 LE at `fmt.sample_rate` (G.711 is decoded; PCM passes through, no copy)."""
    decode = _DECODERS[fmt.encoding]
    return data if decode is None else decode(data)


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """A VAD decision on the session clock (ms since the first byte appended this session)."""

    kind: Literal["start", "stop"]
    ms: int


class TurnDetector:
    """Server VAD over appended audio, configured from `turn_detection`
    (https://platform.openai.com/docs/guides/realtime-vad).

    `threshold` (0..1) maps to the energy VAD's start margin above the noise floor: 0.5 (the
    service default) is 12 dB, each 0.1 adds 1.2 dB. `silence_duration_ms` is the silence that
    ends a turn. Offsets are reported where the speech truly starts and stops; the caller adds
    `prefix_padding_ms` to `speech_started`, as the service does.
    """

    def __init__(self, config: Mapping[str, Any], fmt: AudioFormat, base_ms: float) -> None:
        self.config = dict(config)
        self.fmt = fmt
        self.base_ms = base_ms
        if config["type"] == "server_vad":
            silence = int(config.get("silence_duration_ms", 200))
            threshold = float(config.get("threshold", 0.5))
        else:  # semantic_vad has no knobs; eagerness "high" answers sooner
            silence = {"low": 1200, "medium": 700, "auto": 700, "high": 400}[
                config.get("eagerness", "auto")
            ]
            threshold = 0.5
        start_db = 6.0 + 12.0 * threshold
        self.vad = EnergyVad(
            fmt.sample_rate, frame_ms=20, start_db=start_db, stop_db=start_db / 2,
            min_speech_ms=60, min_silence_ms=silence,
        )  # fmt: skip

    def feed(self, data: bytes) -> list[TurnEvent]:
        pcm = to_pcm16(data, self.fmt)
        rate = self.fmt.sample_rate
        return [
            TurnEvent(ev.kind, int(self.base_ms + ev.sample * 1000 / rate))
            for ev in self.vad.process(pcm)
        ]

    @property
    def speaking(self) -> bool:
        return self.vad.speaking


# --- output speech ----------------------------------------------------------------------------


def _fallback_tone(text: str) -> bytes:
    """A two-tone stand-in when espeak-ng is missing: never silence, length ~ the text."""
    ms = max(300, 60 * len(text))
    half = ms // 2
    return tone(440.0, half, 24000) + tone(660.0, ms - half, 24000)


@functools.lru_cache(maxsize=128)
def speech(text: str, encoding: Encoding) -> bytes:
    """`text` spoken, in the output encoding (PCM16 24 kHz, or G.711 at 8 kHz). Cached."""
    try:
        pcm = synthesize(text, 24000) if text.strip() else b""
    except (SpeechUnavailable, subprocess.SubprocessError, OSError):
        pcm = _fallback_tone(text)
    if not pcm:
        pcm = _fallback_tone(text or "...")
    if encoding is Encoding.PCM16:
        return pcm
    dst = AudioFormat(encoding, 8000)
    plan = build_plan(PCM16_24K, dst)
    return plan.convert(pcm) + plan.flush()


def chunks(data: bytes, fmt: AudioFormat, chunk_ms: int) -> list[bytes]:
    size = max(fmt.bytes_per_sample, fmt.bytes_for_ms(chunk_ms))
    return [data[i : i + size] for i in range(0, len(data), size)]


def split_words(text: str, parts: int) -> list[str]:
    """`text` cut into `parts` pieces at word boundaries (some may be empty), in order."""
    words = text.split(" ")
    out: list[str] = []
    taken = 0
    for i in range(parts):
        upto = math.ceil((i + 1) * len(words) / parts)
        piece = " ".join(words[taken:upto])
        if taken and piece:
            piece = " " + piece
        out.append(piece)
        taken = max(taken, upto)
    return out
