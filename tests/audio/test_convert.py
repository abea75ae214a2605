"""Conversion plans: the chosen chain, passthrough identity, chunking invariance, real speech."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foreman.audio import g711
from foreman.audio.convert import Chain, Passthrough, Transcode, build_plan
from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K, AudioFormat, Encoding
from foreman.audio.resample import choose_quality
from foreman.testing.speech import synthesize

PCM = {r: AudioFormat(Encoding.PCM16, r) for r in (8000, 16000, 24000, 48000)}
ALL = [*PCM.values(), PCMU_8K, PCMA_8K]
PAIRS = list(itertools.product(ALL, ALL))
TEXT = "Please call me back tomorrow at nine."


def _ids(p: tuple[AudioFormat, AudioFormat]) -> str:
    return f"{p[0]}->{p[1]}"


def _source(fmt: AudioFormat) -> bytes:
    """Real speech in `fmt` (espeak, resampled by batch soxr, then G.711 encoded if needed)."""
    pcm = synthesize(TEXT, fmt.sample_rate)
    if fmt.encoding is Encoding.PCMU:
        return g711.pcm16_to_ulaw(pcm)
    if fmt.encoding is Encoding.PCMA:
        return g711.pcm16_to_alaw(pcm)
    return pcm


def _to_float(data: bytes, fmt: AudioFormat) -> np.ndarray:
    if fmt.encoding is Encoding.PCMU:
        return g711.ulaw_decode(data).astype(np.float64)
    if fmt.encoding is Encoding.PCMA:
        return g711.alaw_decode(data).astype(np.float64)
    return np.frombuffer(data, "<i2").astype(np.float64)


def _frames(data: bytes, fmt: AudioFormat, ms: int = 20) -> list[bytes]:
    n = fmt.bytes_for_ms(ms)
    return [data[i : i + n] for i in range(0, len(data), n)]


def test_plan_kinds() -> None:
    assert isinstance(build_plan(PCMU_8K, PCMU_8K), Passthrough)
    assert isinstance(build_plan(PCM16_24K, PCM16_24K), Passthrough)
    assert isinstance(build_plan(PCMU_8K, PCMA_8K), Transcode)
    assert isinstance(build_plan(PCMA_8K, PCMU_8K), Transcode)
    chain = build_plan(PCMU_8K, PCM16_24K)
    assert isinstance(chain, Chain)
    assert chain.steps == ("decode pcmu", "resample 8000->24000 (QQ)", "encode pcm16")
    same_rate = build_plan(PCM[8000], PCMU_8K)
    assert isinstance(same_rate, Chain)
    assert same_rate.steps == ("decode pcm16", "encode pcmu")  # no resampler when rates match


@pytest.mark.parametrize("fmt", ALL, ids=str)
def test_passthrough_returns_the_same_object(fmt: AudioFormat) -> None:
    conv = build_plan(fmt, fmt)
    data = _source(fmt)[: fmt.bytes_for_ms(20)]
    assert conv.is_passthrough
    assert conv.convert(data) is data
    assert conv.flush() == b""
    conv.reset()


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
def test_every_chain_streams_real_speech_like_batch(pair: tuple[AudioFormat, AudioFormat]) -> None:
    src, dst = pair
    data = _source(src)
    whole_conv = build_plan(src, dst)
    whole = whole_conv.convert(data) + whole_conv.flush()
    stream_conv = build_plan(src, dst)
    streamed = b"".join(stream_conv.convert(f) for f in _frames(data, src)) + stream_conv.flush()
    # Chunking invariance: 20 ms frames give exactly what one call gives.
    assert streamed == whole
    # Length: duration preserved to within a sample at the output rate.
    in_ms = src.ms_for_bytes(len(data))
    assert abs(dst.ms_for_bytes(len(whole)) - in_ms) <= 1000 / dst.sample_rate + 1e-9


@pytest.mark.parametrize("pair", PAIRS, ids=_ids)
def test_every_chain_snr_against_batch_reference(pair: tuple[AudioFormat, AudioFormat]) -> None:
    """The streamed chain vs an independent batch conversion (whole-signal `soxr.resample` at
    the chain's quality, G.711 tables): streaming must not add clicks at frame edges (stateless
    per-frame resampling scores ~31 dB)."""
    import soxr

    src, dst = pair
    data = _source(src)
    conv = build_plan(src, dst)
    out = b"".join(conv.convert(f) for f in _frames(data, src)) + conv.flush()
    x = _to_float(data, src)
    if src.sample_rate != dst.sample_rate:
        quality = choose_quality(src.sample_rate, dst.sample_rate)
        x = soxr.resample(x, src.sample_rate, dst.sample_rate, quality=quality)
    ref = x
    if dst.encoding is not Encoding.PCM16:
        enc = g711.ulaw_encode if dst.encoding is Encoding.PCMU else g711.alaw_encode
        ref = _to_float(enc(np.clip(np.rint(x), -32768, 32767).astype("<i2")), dst)
    y = _to_float(out, dst)
    n = min(len(y), len(ref))
    err = y[:n] - ref[:n]
    snr = 10 * np.log10(np.sum(ref[:n] ** 2) / max(np.sum(err**2), 1e-9))
    # G.711 re-encoding of a 1-LSB difference can flip a code: allow for that step only.
    floor = 40.0 if dst.encoding is not Encoding.PCM16 else 60.0
    assert snr > floor, f"{src}->{dst}: SNR {snr:.1f} dB"


@settings(max_examples=40, deadline=None)
@given(
    pair=st.sampled_from(PAIRS),
    cuts=st.lists(st.integers(0, 700), min_size=1, max_size=30),
)
def test_any_split_equals_one_call(pair: tuple[AudioFormat, AudioFormat], cuts: list[int]) -> None:
    src, dst = pair
    data = _source(src)[: src.bytes_for_ms(400)]
    one = build_plan(src, dst)
    expected = one.convert(data) + one.flush()
    conv = build_plan(src, dst)
    parts = []
    pos = 0
    for c in cuts:  # arbitrary byte cuts, including inside a PCM16 sample and empty chunks
        parts.append(conv.convert(data[pos : pos + c]))
        pos += c
    parts.append(conv.convert(data[pos:]))
    parts.append(conv.flush())
    assert b"".join(parts) == expected


@pytest.mark.parametrize("pair", [(PCMU_8K, PCM16_24K), (PCM16_24K, PCMA_8K)], ids=_ids)
def test_reset_forgets_history(pair: tuple[AudioFormat, AudioFormat]) -> None:
    src, dst = pair
    data = _source(src)
    half = len(data) // 2 // 2 * 2
    conv = build_plan(src, dst)
    conv.convert(data[:half] + b"\x01")  # leaves an odd byte for PCM16 sources
    conv.reset()
    fresh = build_plan(src, dst)
    assert conv.convert(data[half:]) + conv.flush() == fresh.convert(data[half:]) + fresh.flush()


def test_ulaw_to_pcm24k_frame_sizes() -> None:
    # QQ returns output on every 20 ms frame: 160 µ-law bytes -> ~480 samples (960 bytes).
    conv = build_plan(PCMU_8K, PCM16_24K)
    sizes = [len(conv.convert(f)) for f in _frames(_source(PCMU_8K), PCMU_8K)[:20]]
    assert all(s > 0 for s in sizes)
    assert sum(sizes[1:]) == 960 * 19
