"""Audio levels: is a chunk speech or (near-)silence? Pure numpy, no I/O.

Used to infer where a continuous output track (GPT-Live streams one real-time track for the
whole session, digital silence between replies) carries speech.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from foreman.audio import g711
from foreman.audio.formats import AudioFormat, Encoding

__all__ = ["SILENCE_PEAK", "is_silent", "peak"]

SILENCE_PEAK: Final = 64  # of 32767 (about -54 dBFS): below this a chunk carries no speech


def peak(chunk: bytes, fmt: AudioFormat) -> int:
    """The largest absolute sample value of `chunk` (0 for an empty chunk)."""
    if not chunk:
        return 0
    if fmt.encoding is Encoding.PCMU:
        samples = g711.ulaw_decode(chunk)
    elif fmt.encoding is Encoding.PCMA:
        samples = g711.alaw_decode(chunk)
    else:
        usable = len(chunk) - len(chunk) % 2
        samples = np.frombuffer(chunk, dtype="<i2", count=usable // 2)
    if samples.size == 0:
        return 0
    return int(np.max(np.abs(samples.astype(np.int32))))


def is_silent(chunk: bytes, fmt: AudioFormat, threshold: int = SILENCE_PEAK) -> bool:
    return peak(chunk, fmt) < threshold
