"""JitterBuffer: priming, bursts, underrun, overrun, flush generations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foreman.audio import g711
from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K
from foreman.audio.jitter import JitterBuffer
from foreman.exceptions import AudioFormatError
from foreman.testing.speech import synthesize

SPEECH = g711.pcm16_to_ulaw(synthesize("One moment while I check your calendar.", 8000))
FRAME = 160


def test_primes_to_target_then_plays_whole_frames_in_order() -> None:
    jb = JitterBuffer(PCMU_8K)  # 20 ms frames, 60 ms target
    jb.push(SPEECH[:320])  # 40 ms: still priming
    f = jb.pop_frame()
    assert f.silence and f.data == b"\xff" * FRAME and jb.underruns == 0
    jb.push(SPEECH[320:3200])  # burst: 400 ms total
    out = b""
    while jb.buffered_ms >= 20:
        fr = jb.pop_frame()
        assert not fr.silence and len(fr.data) == FRAME and fr.generation == 0
        out += fr.data
    assert out == SPEECH[:3200]
    assert jb.underruns == 0


def test_underrun_fills_silence_counts_and_reprimes() -> None:
    jb = JitterBuffer(PCMU_8K)
    jb.push(SPEECH[: 4 * FRAME])
    for _ in range(4):
        assert not jb.pop_frame().silence
    starved = jb.pop_frame()
    assert starved.silence and jb.underruns == 1
    assert jb.pop_frame().silence and jb.underruns == 1  # priming again: not counted twice
    jb.push(SPEECH[4 * FRAME : 6 * FRAME])  # 40 ms < target: still priming
    assert jb.pop_frame().silence and jb.underruns == 1
    jb.push(SPEECH[6 * FRAME : 7 * FRAME])
    assert jb.pop_frame().data == SPEECH[4 * FRAME : 5 * FRAME]


def test_end_of_stream_plays_out_short_tail_padded() -> None:
    jb = JitterBuffer(PCMU_8K)
    jb.push(SPEECH[:250])  # 31 ms, below target
    jb.end_of_stream()
    a, b, c = jb.pop_frame(), jb.pop_frame(), jb.pop_frame()
    assert a.data == SPEECH[:FRAME] and not a.silence
    assert b.data == SPEECH[FRAME:250] + b"\xff" * (2 * FRAME - 250) and not b.silence
    assert c.silence
    assert jb.underruns == 0


def test_overrun_drops_oldest_whole_frames() -> None:
    jb = JitterBuffer(PCMU_8K, max_ms=200)
    jb.push(SPEECH[:2000])  # 250 ms into a 200 ms buffer
    assert jb.buffered_ms <= 200
    assert jb.overrun_dropped_ms == pytest.approx(60.0)  # 50 ms excess -> three whole frames
    assert jb.pop_frame().data == SPEECH[480:640]


def test_flush_bumps_generation_and_empties_at_once() -> None:
    jb = JitterBuffer(PCMU_8K)
    jb.push(SPEECH[:1600])
    old = jb.pop_frame()
    gen = jb.flush()
    assert gen == 1 == jb.generation
    assert jb.buffered_ms == 0
    assert old.generation != jb.generation  # a consumer drops frames from before the flush
    nxt = jb.pop_frame()
    assert nxt.silence and nxt.generation == 1
    assert jb.underruns == 0  # flushed silence is not starvation


@pytest.mark.parametrize(("fmt", "byte"), [(PCM16_24K, 0x00), (PCMU_8K, 0xFF), (PCMA_8K, 0xD5)])
def test_silence_per_format(fmt, byte) -> None:  # type: ignore[no-untyped-def]
    f = JitterBuffer(fmt).pop_frame()
    assert f.data == bytes([byte]) * fmt.bytes_for_ms(20)


def test_bad_parameters() -> None:
    with pytest.raises(AudioFormatError):
        JitterBuffer(PCMU_8K, target_ms=3000, max_ms=2000)
    with pytest.raises(AudioFormatError):
        JitterBuffer(PCMU_8K, frame_ms=0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1200), st.integers(0, 5)), max_size=40))
def test_audio_out_is_audio_in_minus_drops(steps: list[tuple[int, int]]) -> None:
    """Whatever the burst pattern: real frames replay the input in order, nothing invented."""
    jb = JitterBuffer(PCMU_8K, max_ms=400)
    data = SPEECH
    pos = 0
    out = bytearray()
    for push, pops in steps:
        chunk = data[pos : pos + push]
        jb.push(chunk)
        pos += len(chunk)  # past the end of the clip, pushes are empty
        for _ in range(pops):
            fr = jb.pop_frame()
            assert len(fr.data) == FRAME
            if not fr.silence:
                out += fr.data
        assert jb.buffered_ms <= 400
    jb.end_of_stream()
    while jb.buffered_ms > 0:
        fr = jb.pop_frame()
        out += fr.data
    dropped = round(jb.overrun_dropped_ms * 8)
    out_real = bytes(out).rstrip(b"\xff")
    assert len(out) >= pos - dropped
    if dropped == 0:
        assert out_real == data[:pos].rstrip(b"\xff")


def test_pcm16_split_inside_a_sample_stays_aligned() -> None:
    pcm = synthesize("One moment while I check your calendar.", 24000)[: 960 * 6]
    jb = JitterBuffer(PCM16_24K)
    jb.push(pcm[:961])  # ends half-way through a sample
    jb.push(pcm[961:])
    out = b"".join(jb.pop_frame().data for _ in range(6))
    assert out == pcm


def test_free_ms_reports_room_before_overrun() -> None:
    jb = JitterBuffer(PCMU_8K, max_ms=200)
    assert jb.free_ms == 200
    jb.push(SPEECH[:800])
    assert jb.free_ms == 100
    jb.push(SPEECH[800:1600])
    assert jb.free_ms == 0 and jb.overrun_dropped_ms == 0
