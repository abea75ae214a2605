"""Audio formats and frame arithmetic, and the names config files use for them.

Config names: `pcm16`, `g711_ulaw`, `g711_alaw` (and common aliases). How a protocol spells a
format on its wire belongs to that protocol (e.g. `protocols.realtime.wire_formats`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from foreman.exceptions import AudioFormatError


class Encoding(enum.StrEnum):
    PCM16 = "pcm16"
    PCMU = "pcmu"
    PCMA = "pcma"


_BYTES_PER_SAMPLE = {Encoding.PCM16: 2, Encoding.PCMU: 1, Encoding.PCMA: 1}

# Every name `AudioFormat.from_name` accepts; config keys that hold a format use this type.
AudioFormatName = Literal[
    "pcm16",
    "audio/pcm",
    "pcm",
    "s16le",
    "g711_ulaw",
    "audio/pcmu",
    "pcmu",
    "ulaw",
    "mulaw",
    "audio/x-mulaw",
    "g711_alaw",
    "audio/pcma",
    "pcma",
    "alaw",
]
# The same names with their encodings (tests/audio/test_formats.py keeps the two in step).
ENCODING_BY_NAME: dict[str, Encoding] = {
    "pcm16": Encoding.PCM16,
    "audio/pcm": Encoding.PCM16,
    "pcm": Encoding.PCM16,
    "s16le": Encoding.PCM16,
    "g711_ulaw": Encoding.PCMU,
    "audio/pcmu": Encoding.PCMU,
    "pcmu": Encoding.PCMU,
    "ulaw": Encoding.PCMU,
    "mulaw": Encoding.PCMU,
    "audio/x-mulaw": Encoding.PCMU,
    "g711_alaw": Encoding.PCMA,
    "audio/pcma": Encoding.PCMA,
    "pcma": Encoding.PCMA,
    "alaw": Encoding.PCMA,
}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    encoding: Encoding
    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise AudioFormatError(f"sample rate must be positive, got {self.sample_rate}")
        if self.channels != 1:
            raise AudioFormatError(f"only mono audio is supported, got {self.channels} channels")
        if self.encoding is not Encoding.PCM16 and self.sample_rate != 8000:
            raise AudioFormatError(f"{self.encoding} is defined at 8000 Hz only")

    # frame arithmetic -------------------------------------------------------------
    @property
    def bytes_per_sample(self) -> int:
        return _BYTES_PER_SAMPLE[self.encoding] * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.bytes_per_sample * self.sample_rate

    def bytes_for_ms(self, ms: float) -> int:
        """Bytes in `ms` milliseconds, rounded down to a whole sample."""
        return int(self.sample_rate * ms / 1000) * self.bytes_per_sample

    def samples_for_ms(self, ms: float) -> int:
        return int(self.sample_rate * ms / 1000)

    def ms_for_bytes(self, n: int) -> float:
        return n * 1000 / self.bytes_per_second

    def samples_for_bytes(self, n: int) -> int:
        return n // self.bytes_per_sample

    # names ------------------------------------------------------------------------
    @property
    def config_name(self) -> str:
        """The legacy config name (`pcm16`, `g711_ulaw`, `g711_alaw`)."""
        return {Encoding.PCM16: "pcm16", Encoding.PCMU: "g711_ulaw", Encoding.PCMA: "g711_alaw"}[
            self.encoding
        ]

    @classmethod
    def from_name(cls, name: str, sample_rate: int | None = None) -> AudioFormat:
        """Parse a config or GA name. PCM16 takes `sample_rate` (default 24000)."""
        encoding = ENCODING_BY_NAME.get(name.strip().lower())
        if encoding is Encoding.PCM16:
            return cls(Encoding.PCM16, sample_rate or 24000)
        if encoding is Encoding.PCMU:
            return PCMU_8K
        if encoding is Encoding.PCMA:
            return PCMA_8K
        raise AudioFormatError(
            f"unknown audio format {name!r}; valid names: {', '.join(VALID_NAMES)}"
        )

    def __str__(self) -> str:
        return f"{self.encoding}@{self.sample_rate}"


VALID_NAMES = ("pcm16", "g711_ulaw", "g711_alaw", "audio/pcm", "audio/pcmu", "audio/pcma")

PCM16_24K = AudioFormat(Encoding.PCM16, 24000)
PCMU_8K = AudioFormat(Encoding.PCMU, 8000)
PCMA_8K = AudioFormat(Encoding.PCMA, 8000)
