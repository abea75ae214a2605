"""G.711 against the ITU-T G.191 algorithm, CPython audioop and known code vectors."""

from __future__ import annotations

import base64
import hashlib
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from foreman.audio import g711
from foreman.exceptions import AudioFormatError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # Python >= 3.13
        audioop = None  # type: ignore[assignment]

needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop removed in Python 3.13")

ALL_PCM = np.arange(-32768, 32768, dtype="<i2")
ALL_CODES = bytes(range(256))

# PCM16 in, µ-law code, decoded value (the G.191 code where encoders differ)
ULAW_VECTORS = [
    (-32768, 0x00, -32124),
    (-16384, 0x0F, -16764),
    (-8000, 0x20, -7932),
    (-5657, 0x29, -5628),
    (-1024, 0x4D, -1052),
    (-100, 0x73, -96),  # the table says 72 -> -104 for the 16-bit form; G.191 picks 73
    (-8, 0x7E, -8),
    (-1, 0x7F, 0),
    (0, 0xFF, 0),
    (1, 0xFF, 0),
    (8, 0xFE, 8),
    (100, 0xF2, 104),
    (1024, 0xCD, 1052),
    (5657, 0xA9, 5628),
    (8000, 0xA0, 7932),
    (16384, 0x8F, 16764),
    (32767, 0x80, 32124),
]


def _g191_ulaw_compress(x: int) -> int:
    """Scalar transcription of ITU-T G.191 `ulaw_compress` (an independent second oracle)."""
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i:
        segno += 1
        i >>= 1
    code = ((8 - segno) << 4) | (0x0F - ((absno >> segno) & 0x0F))
    return code | 0x80 if x >= 0 else code


def _g191_alaw_compress(x: int) -> int:
    ix = (~x) >> 4 if x < 0 else x >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


@pytest.mark.parametrize(("pcm", "code", "decoded"), ULAW_VECTORS)
def test_ulaw_reference_vectors(pcm: int, code: int, decoded: int) -> None:
    assert g711.pcm16_to_ulaw(np.array([pcm], "<i2").tobytes()) == bytes([code])
    assert np.frombuffer(g711.ulaw_to_pcm16(bytes([code])), "<i2")[0] == decoded


def test_ulaw_decode_table_checksum() -> None:
    table = g711.ulaw_to_pcm16(ALL_CODES)
    assert hashlib.sha256(table).hexdigest() == (
        "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827"
    )
    dec = np.frombuffer(table, "<i2")
    assert dec[0xF0:].tolist() == list(range(120, -1, -8))
    assert dec[0x70:0x80].tolist() == list(range(-120, 1, 8))


def test_named_constants() -> None:
    assert g711.ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xFE, 0x7E])).tolist() == [
        0, 0, 32124, -32124, 8, -8,
    ]  # fmt: skip
    assert g711.ulaw_decode(bytes([g711.ULAW_SILENCE]))[0] == 0
    assert g711.alaw_decode(bytes([g711.ALAW_SILENCE]))[0] == 8


def test_tone_payload_vector() -> None:
    # One period of a 1 kHz tone, amplitude 8000, twenty periods per 160-byte frame.
    period = np.array([0, 5657, 8000, 5657, 0, -5657, -8000, -5657], "<i2")
    frame = g711.pcm16_to_ulaw(np.tile(period, 20).tobytes())
    assert frame[:8] == bytes.fromhex("FFA9A0A9FF292029")
    assert hashlib.sha256(frame).hexdigest() == (
        "db13fe88c62aa5ccd03dee93d192fa625ab8710bc0b8eeba09af50088398e022"
    )
    assert base64.b64encode(frame).decode().startswith("/6mgqf8pICn/")
    assert g711.ulaw_decode(frame[:8]).tolist() == [0, 5628, 7932, 5628, 0, -5628, -7932, -5628]
    assert base64.b64encode(bytes([0xFF]) * 160).decode() == "////" * 53 + "/w=="


def test_encoders_match_g191_on_every_input() -> None:
    ulaw = np.frombuffer(g711.pcm16_to_ulaw(ALL_PCM.tobytes()), np.uint8)
    alaw = np.frombuffer(g711.pcm16_to_alaw(ALL_PCM.tobytes()), np.uint8)
    # Every 97th input plus the segment edges keeps the scalar oracle fast.
    idx = sorted({*range(0, 65536, 97), *range(32768 - 300, 32768 + 300), 0, 65535})
    for i in idx:
        x = int(ALL_PCM[i])
        assert ulaw[i] == _g191_ulaw_compress(x), x
        assert alaw[i] == _g191_alaw_compress(x), x


@needs_audioop
def test_decoders_match_audioop_exactly() -> None:
    assert g711.ulaw_to_pcm16(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert g711.alaw_to_pcm16(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


@needs_audioop
def test_alaw_encoder_matches_audioop_on_all_65536_inputs() -> None:
    assert g711.pcm16_to_alaw(ALL_PCM.tobytes()) == audioop.lin2alaw(ALL_PCM.tobytes(), 2)


@needs_audioop
def test_ulaw_encoder_vs_audioop() -> None:
    ours = np.frombuffer(g711.pcm16_to_ulaw(ALL_PCM.tobytes()), np.uint8)
    theirs = np.frombuffer(audioop.lin2ulaw(ALL_PCM.tobytes(), 2), np.uint8)
    nonneg = ALL_PCM >= 0
    assert np.array_equal(ours[nonneg], theirs[nonneg])
    differ = ours != theirs
    # audioop (two's complement) and G.191 (one's complement) disagree on 508 negatives,
    # always by one code step.
    assert int(differ.sum()) == 508
    assert np.all(np.abs(ours[differ].astype(int) - theirs[differ].astype(int)) == 1)


@pytest.mark.parametrize(("enc", "dec"), [("ulaw", "ulaw"), ("alaw", "alaw")])
def test_code_round_trip(enc: str, dec: str) -> None:
    decode = getattr(g711, f"{dec}_decode")
    encode = getattr(g711, f"{enc}_encode")
    back = np.frombuffer(encode(decode(ALL_CODES)), np.uint8)
    same = back == np.arange(256)
    if enc == "ulaw":
        # Only negative zero (0x7F) comes back as positive zero (0xFF).
        assert np.flatnonzero(~same).tolist() == [0x7F]
        assert back[0x7F] == 0xFF
    else:
        assert same.all()


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_quantisation_error_bound_on_every_input(law: str) -> None:
    decode = getattr(g711, f"{law}_decode")
    encode = getattr(g711, f"{law}_encode")
    x = ALL_PCM.astype(np.int64)
    y = decode(encode(ALL_PCM)).astype(np.int64)
    err = np.abs(y - x)
    mag = np.abs(x)
    # Half a step of the segment (steps double per segment), plus the clip at full scale.
    if law == "ulaw":
        bound = np.maximum(8, 2 ** np.floor(np.log2((mag + 132) / 128 + 1e-9)) * 8) / 2 + 4
        bound = np.where(mag > 32124, mag - 32124 + 1, bound)
    else:
        bound = np.maximum(16, 2 ** np.floor(np.log2(np.maximum(mag, 1) / 256 + 1e-9)) * 16) / 2
        bound = np.where(mag > 32256, mag - 32256 + 1, bound)
        bound = bound + 1
    assert np.all(err <= bound)
    # Signs survive (zero may go either way).
    assert np.all(np.sign(y[mag > 16]) == np.sign(x[mag > 16]))


@given(st.binary(max_size=400))
def test_transcode_equals_decode_then_encode(data: bytes) -> None:
    assert g711.ulaw_to_alaw(data) == g711.alaw_encode(g711.ulaw_decode(data))
    assert g711.alaw_to_ulaw(data) == g711.ulaw_encode(g711.alaw_decode(data))


@given(st.lists(st.integers(-32768, 32767), max_size=300))
def test_bytes_and_array_apis_agree(values: list[int]) -> None:
    arr = np.array(values, dtype="<i2")
    assert g711.pcm16_to_ulaw(arr.tobytes()) == g711.ulaw_encode(arr)
    assert g711.pcm16_to_alaw(arr.tobytes()) == g711.alaw_encode(arr)
    u = g711.ulaw_encode(arr)
    assert g711.ulaw_to_pcm16(u) == g711.ulaw_decode(u).tobytes()
    # Decode -> encode -> decode is idempotent after the first encode.
    assert g711.ulaw_encode(g711.ulaw_decode(u)) == u.replace(b"\x7f", b"\xff")


def test_odd_pcm_length_is_a_clear_error() -> None:
    with pytest.raises(AudioFormatError, match="2-byte samples"):
        g711.pcm16_to_ulaw(b"\x00\x01\x02")
    with pytest.raises(AudioFormatError):
        g711.pcm16_to_alaw(b"\x00")


def test_empty_input() -> None:
    assert g711.ulaw_to_pcm16(b"") == b""
    assert g711.pcm16_to_ulaw(b"") == b""
    assert g711.ulaw_decode(b"").dtype == np.int16


def test_decoded_arrays_are_writable_copies() -> None:
    a = g711.ulaw_decode(b"\x00\x80")
    a[0] = 1  # must not corrupt the table
    assert g711.ulaw_decode(b"\x00")[0] == -32124
