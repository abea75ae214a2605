"""G.711 µ-law and A-law with numpy lookup tables, bit-exact with the ITU-T G.191 reference.

Encoding is one table lookup per sample (`ndarray.take`, faster than fancy indexing) in a
65,536-entry table indexed by the PCM16 sample read as an unsigned 16-bit number. Decoding is a
256-entry table. The tables are built once at import from the ITU-T G.191 software-tools
routines (`ulaw_compress`/`ulaw_expand`, `alaw_compress`/`alaw_expand`), which take the one's
complement of negative samples.

Decoders agree with every implementation (CPython `audioop` included). Encoders agree with
`audioop` for A-law on every input and for µ-law on every input >= 0; for some negative inputs
near a segment edge `audioop.lin2ulaw` (Sun's routine, two's complement) picks the neighbouring
code (measured over all 65,536 inputs: -1 -> 7F here and in G.191, 7E in audioop;
-100 -> 73 here and in G.191, 72 in audioop). Both decode within one quantisation step.

µ-law <-> A-law transcoding goes through `bytes.translate` with a 256-byte table (no PCM).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from foreman.exceptions import AudioFormatError

__all__ = [
    "ALAW_SILENCE",
    "ULAW_SILENCE",
    "alaw_decode",
    "alaw_decode_f32",
    "alaw_encode",
    "alaw_to_pcm16",
    "alaw_to_ulaw",
    "pcm16_to_alaw",
    "pcm16_to_ulaw",
    "ulaw_decode",
    "ulaw_decode_f32",
    "ulaw_encode",
    "ulaw_to_alaw",
    "ulaw_to_pcm16",
]

ULAW_SILENCE = 0xFF  # decodes to 0 (positive zero); the byte Twilio streams for silence
ALAW_SILENCE = 0xD5  # decodes to +8, the smallest positive A-law level

Int16Array = npt.NDArray[np.int16]


# table construction (G.191 algorithms, vectorised over all inputs) -------------------------
def _ulaw_compress(x: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    absno = np.where(x < 0, ((~x) >> 2) + 33, (x >> 2) + 33)
    absno = np.minimum(absno, 0x1FFF)
    segno = np.ones_like(absno)
    i = absno >> 6
    while np.any(i):
        segno += i != 0
        i >>= 1
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    return code.astype(np.uint8)


def _ulaw_expand(code: npt.NDArray[np.int32]) -> Int16Array:
    sign = np.where(code < 0x80, -1, 1)
    mant = ~code
    exponent = (mant >> 4) & 0x07
    step = 4 << (exponent + 1)
    mant &= 0x0F
    out: Int16Array = (sign * ((0x80 << exponent) + step * mant + step // 2 - 4 * 33)).astype(
        np.int16
    )
    return out


def _alaw_compress(x: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    ix = np.where(x < 0, (~x) >> 4, x >> 4)
    out = ix.copy()
    big = ix > 15
    # Segment number = number of right shifts until the value fits in 5 bits, plus one.
    iexp = np.ones_like(ix)
    v = ix.copy()
    while True:
        over = big & (v > 16 + 15)
        if not np.any(over):
            break
        v = np.where(over, v >> 1, v)
        iexp += over
    out = np.where(big, v - 16 + (iexp << 4), ix)
    out = np.where(x >= 0, out | 0x80, out)
    return (out ^ 0x55).astype(np.uint8)


def _alaw_expand(code: npt.NDArray[np.int32]) -> Int16Array:
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    mant = np.where(iexp > 0, mant + 16, mant)
    mant = (mant << 4) + 8
    mant = np.where(iexp > 1, mant << np.maximum(iexp - 1, 0), mant)
    return np.where(code > 127, mant, -mant).astype(np.int16)


_ALL_PCM = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
_ALL_CODES = np.arange(256, dtype=np.int32)

# Encode tables are indexed by the sample's bit pattern as uint16 (so negatives index the top
# half); decode tables are little-endian int16 so `.tobytes()` is already PCM16 LE.
_ULAW_ENC: npt.NDArray[np.uint8] = _ulaw_compress(_ALL_PCM)
_ALAW_ENC: npt.NDArray[np.uint8] = _alaw_compress(_ALL_PCM)
_ULAW_DEC: Int16Array = _ulaw_expand(_ALL_CODES).astype("<i2")
_ALAW_DEC: Int16Array = _alaw_expand(_ALL_CODES).astype("<i2")
# float32 copies feed the resampler straight from the code bytes (one lookup, no astype).
_ULAW_DEC_F32 = _ULAW_DEC.astype(np.float32)
_ALAW_DEC_F32 = _ALAW_DEC.astype(np.float32)
for _t in (_ULAW_ENC, _ALAW_ENC, _ULAW_DEC, _ALAW_DEC, _ULAW_DEC_F32, _ALAW_DEC_F32):
    _t.flags.writeable = False

# Direct transcoding: decode with one law, encode with the other (G.711 Annex-style mapping
# through linear PCM, computed once).
_ULAW_TO_ALAW = bytes(_ALAW_ENC[_ULAW_DEC.view(np.uint16)].tolist())
_ALAW_TO_ULAW = bytes(_ULAW_ENC[_ALAW_DEC.view(np.uint16)].tolist())


def _pcm_index(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint16]:
    if len(data) % 2:
        raise AudioFormatError(
            f"PCM16 data must be a whole number of 2-byte samples, got {len(data)} bytes"
        )
    return np.frombuffer(data, dtype="<u2")


# array API ---------------------------------------------------------------------------------
def ulaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """µ-law bytes -> int16 samples (a new array; safe to modify)."""
    return _ULAW_DEC.take(np.frombuffer(data, dtype=np.uint8))


def alaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """A-law bytes -> int16 samples (a new array; safe to modify)."""
    return _ALAW_DEC.take(np.frombuffer(data, dtype=np.uint8))


def ulaw_decode_f32(data: bytes | bytearray | memoryview) -> npt.NDArray[np.float32]:
    """µ-law bytes -> float32 samples on the int16 scale (for the resampler)."""
    return _ULAW_DEC_F32.take(np.frombuffer(data, dtype=np.uint8))


def alaw_decode_f32(data: bytes | bytearray | memoryview) -> npt.NDArray[np.float32]:
    """A-law bytes -> float32 samples on the int16 scale (for the resampler)."""
    return _ALAW_DEC_F32.take(np.frombuffer(data, dtype=np.uint8))


def ulaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples -> µ-law bytes."""
    return _ULAW_ENC.take(np.asarray(samples, dtype=np.int16).view(np.uint16)).tobytes()


def alaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples -> A-law bytes."""
    return _ALAW_ENC.take(np.asarray(samples, dtype=np.int16).view(np.uint16)).tobytes()


# bytes API ---------------------------------------------------------------------------------
def ulaw_to_pcm16(data: bytes | bytearray | memoryview) -> bytes:
    """µ-law bytes -> PCM16 little-endian bytes (twice as long)."""
    return _ULAW_DEC.take(np.frombuffer(data, dtype=np.uint8)).tobytes()


def alaw_to_pcm16(data: bytes | bytearray | memoryview) -> bytes:
    """A-law bytes -> PCM16 little-endian bytes (twice as long)."""
    return _ALAW_DEC.take(np.frombuffer(data, dtype=np.uint8)).tobytes()


def pcm16_to_ulaw(data: bytes | bytearray | memoryview) -> bytes:
    """PCM16 LE bytes -> µ-law bytes. Raises AudioFormatError on an odd byte count."""
    return _ULAW_ENC.take(_pcm_index(data)).tobytes()


def pcm16_to_alaw(data: bytes | bytearray | memoryview) -> bytes:
    """PCM16 LE bytes -> A-law bytes. Raises AudioFormatError on an odd byte count."""
    return _ALAW_ENC.take(_pcm_index(data)).tobytes()


def ulaw_to_alaw(data: bytes | bytearray | memoryview) -> bytes:
    """µ-law -> A-law without going through numpy (one `bytes.translate`)."""
    return bytes(data).translate(_ULAW_TO_ALAW)


def alaw_to_ulaw(data: bytes | bytearray | memoryview) -> bytes:
    """A-law -> µ-law without going through numpy (one `bytes.translate`)."""
    return bytes(data).translate(_ALAW_TO_ULAW)
