"""Conversion plans: the cheapest chain from one `AudioFormat` to another.

    same format                 -> Passthrough (returns the very same object, no copy)
    pcmu <-> pcma               -> one `bytes.translate` (no PCM in between)
    anything else               -> decode -> [resample] -> encode, state kept across chunks

Build one converter per direction per call with `build_plan(src, dst)`, feed it every chunk in
order with `convert`, call `flush` at end of stream and `reset` after a barge-in (so old filter
history and half samples do not leak into the next response).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from foreman.audio import g711
from foreman.audio.formats import AudioFormat, Encoding
from foreman.audio.resample import DEFAULT_QUALITY, StreamResampler

__all__ = ["Converter", "build_plan"]

Int16Array = npt.NDArray[np.int16]


class Converter(Protocol):
    """One direction of audio conversion. `convert` may return b"" while a filter fills."""

    src: AudioFormat
    dst: AudioFormat
    is_passthrough: bool

    def convert(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    def reset(self) -> None: ...


class Passthrough:
    """Source and destination match: `convert` returns its argument unchanged (same object)."""

    __slots__ = ("dst", "is_passthrough", "src")

    def __init__(self, fmt: AudioFormat) -> None:
        self.src = fmt
        self.dst = fmt
        self.is_passthrough = True

    def convert(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""

    def reset(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"Passthrough({self.src})"


class Transcode:
    """µ-law <-> A-law at 8 kHz through a 256-byte translation table; stateless."""

    __slots__ = ("_fn", "dst", "is_passthrough", "src")

    def __init__(self, src: AudioFormat, dst: AudioFormat) -> None:
        self.src = src
        self.dst = dst
        self.is_passthrough = False
        self._fn = g711.ulaw_to_alaw if src.encoding is Encoding.PCMU else g711.alaw_to_ulaw

    def convert(self, data: bytes) -> bytes:
        return self._fn(data)

    def flush(self) -> bytes:
        return b""

    def reset(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"Transcode({self.src} -> {self.dst})"


def _pcm16_decode(data: bytes) -> Int16Array:
    return np.frombuffer(data, dtype="<i2")


def _pcm16_encode(samples: Int16Array) -> bytes:
    return samples.tobytes()


_DECODERS: Final[dict[Encoding, Callable[[bytes], Int16Array]]] = {
    Encoding.PCM16: _pcm16_decode,
    Encoding.PCMU: g711.ulaw_decode,
    Encoding.PCMA: g711.alaw_decode,
}


def _pcm16_decode_f32(data: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(data, dtype="<i2").astype(np.float32)


# When a resampler follows, decode straight to float32 (what soxr runs on).
_DECODERS_F32: Final[dict[Encoding, Callable[[bytes], npt.NDArray[np.float32]]]] = {
    Encoding.PCM16: _pcm16_decode_f32,
    Encoding.PCMU: g711.ulaw_decode_f32,
    Encoding.PCMA: g711.alaw_decode_f32,
}
_ENCODERS: Final[dict[Encoding, Callable[[Int16Array], bytes]]] = {
    Encoding.PCM16: _pcm16_encode,
    Encoding.PCMU: g711.ulaw_encode,
    Encoding.PCMA: g711.alaw_encode,
}


class Chain:
    """decode -> optional streaming resample -> encode.

    A PCM16 source may be split anywhere, even inside a sample: the odd byte waits for the
    next chunk, so any split of the input gives the same output as one call.
    """

    __slots__ = (
        "_carry",
        "_decode",
        "_decode_f32",
        "_encode",
        "_resampler",
        "_sample_bytes",
        "dst",
        "is_passthrough",
        "src",
    )

    def __init__(self, src: AudioFormat, dst: AudioFormat, quality: str = DEFAULT_QUALITY) -> None:
        self.src = src
        self.dst = dst
        self.is_passthrough = False
        self._decode = _DECODERS[src.encoding]
        self._decode_f32 = _DECODERS_F32[src.encoding]
        self._encode = _ENCODERS[dst.encoding]
        self._sample_bytes = src.bytes_per_sample
        self._resampler = (
            StreamResampler(src.sample_rate, dst.sample_rate, quality)
            if src.sample_rate != dst.sample_rate
            else None
        )
        self._carry = b""

    @property
    def steps(self) -> tuple[str, ...]:
        """What this chain does, for logs and status pages."""
        out = [f"decode {self.src.encoding}"]
        if self._resampler is not None:
            out.append(
                f"resample {self.src.sample_rate}->{self.dst.sample_rate} "
                f"({self._resampler.quality})"
            )
        out.append(f"encode {self.dst.encoding}")
        return tuple(out)

    def convert(self, data: bytes) -> bytes:
        if self._carry:
            data = self._carry + data
            self._carry = b""
        if self._sample_bytes == 2 and len(data) % 2:
            self._carry = data[-1:]
            data = data[:-1]
        if not data:
            return b""
        if self._resampler is not None:
            return self._encode(self._resampler.process_f32(self._decode_f32(data)))
        return self._encode(self._decode(data))

    def flush(self) -> bytes:
        """End of stream: drain the resampler (a dangling half sample is dropped)."""
        self._carry = b""
        if self._resampler is None:
            return b""
        return self._encode(self._resampler.flush_array())

    def reset(self) -> None:
        self._carry = b""
        if self._resampler is not None:
            self._resampler.reset()

    def __repr__(self) -> str:
        return f"Chain({self.src} -> {self.dst}: {', '.join(self.steps)})"


def build_plan(src: AudioFormat, dst: AudioFormat, quality: str = DEFAULT_QUALITY) -> Converter:
    """The cheapest converter from `src` to `dst` (see the module docstring for the choice)."""
    if src == dst:
        return Passthrough(src)
    if src.encoding is not Encoding.PCM16 and dst.encoding is not Encoding.PCM16:
        # Both G.711 at 8 kHz (AudioFormat enforces it) but different laws.
        return Transcode(src, dst)
    return Chain(src, dst, quality)
