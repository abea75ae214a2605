"""EnergyVad on real synthesized speech, with and without noise, chunked any way."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foreman.audio.vad import EnergyVad, VadEvent
from foreman.exceptions import AudioFormatError
from foreman.testing.speech import synthesize

RATE = 16000


def _speech(rate: int = RATE) -> np.ndarray:
    return np.frombuffer(synthesize("Hello there. How are you doing today?", rate), "<i2")


def _bounds(x: np.ndarray, rate: int) -> tuple[int, int]:
    """First and last sample of the clean speech whose 10 ms level exceeds -50 dBFS."""
    hop = rate // 100
    n = len(x) // hop
    e = (x[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(axis=1)
    loud = np.flatnonzero(10 * np.log10(e / 32768**2 + 1e-12) > -50)
    return int(loud[0]) * hop, int(loud[-1] + 1) * hop


def _scene(rate: int, lead_ms: int = 700, tail_ms: int = 1200) -> tuple[np.ndarray, int, int]:
    s = _speech(rate)
    lead = np.zeros(rate * lead_ms // 1000, "<i2")
    tail = np.zeros(rate * tail_ms // 1000, "<i2")
    x = np.concatenate([lead, s, tail])
    first, last = _bounds(x, rate)
    return x, first, last


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_detects_speech_in_silence(rate: int) -> None:
    x, first, last = _scene(rate)
    vad = EnergyVad(rate)
    events = vad.process(x.tobytes())
    assert [e.kind for e in events] == ["start", "stop"]
    start, stop = events
    frame = rate // 50
    assert abs(start.sample - first) <= 2 * frame
    # espeak pauses between the two sentences are shorter than min_silence_ms (500 ms)
    assert last - frame <= stop.sample <= last + 3 * frame
    assert not vad.speaking


@pytest.mark.parametrize("noise_dbfs", [-50, -35])
def test_detects_speech_in_white_noise(noise_dbfs: float) -> None:
    x, first, last = _scene(RATE, lead_ms=1500)
    rng = np.random.default_rng(7)
    sigma = 32768 * 10 ** (noise_dbfs / 20)
    noisy = np.clip(x + rng.normal(0, sigma, len(x)), -32768, 32767).astype("<i2")
    events = EnergyVad(RATE).process(noisy.tobytes())
    assert [e.kind for e in events] == ["start", "stop"]
    # Noise hides the quietest onsets and tails, never by more than 150 ms.
    assert abs(events[0].sample - first) <= RATE * 150 // 1000
    assert abs(events[1].sample - last) <= RATE * 150 // 1000


def test_stationary_noise_alone_never_starts_speech() -> None:
    rng = np.random.default_rng(3)
    for sigma in (30, 300, 3000):
        noise = rng.normal(0, sigma, RATE * 4).astype("<i2")
        vad = EnergyVad(RATE)
        assert vad.process(noise.tobytes()) == []
        assert not vad.speaking


def test_noise_floor_adapts_to_louder_background() -> None:
    rng = np.random.default_rng(5)
    quiet = rng.normal(0, 30, RATE * 2)
    loud = rng.normal(0, 1500, RATE * 6)  # +34 dB step in background noise
    vad = EnergyVad(RATE)
    events = vad.process(np.concatenate([quiet, loud]).astype("<i2").tobytes())
    # The step looks like speech at first, but the floor catches up within its window and the
    # detector stops; it must not stay "speaking" forever.
    assert not vad.speaking
    assert vad.noise_floor_db > -40
    if events:
        assert [e.kind for e in events] == ["start", "stop"]


def test_short_click_is_not_speech() -> None:
    x = np.zeros(RATE, "<i2")
    x[8000 : 8000 + RATE * 30 // 1000] = 12000  # 30 ms burst < min_speech_ms 60
    assert EnergyVad(RATE).process(x.tobytes()) == []


def test_short_pause_does_not_stop_speech() -> None:
    s = _speech()
    a, b = _bounds(s, RATE)
    s = s[a:b]  # espeak pads its output with silence; the gap below must be the only pause
    gap = np.zeros(RATE * 300 // 1000, "<i2")
    lead = np.zeros(RATE // 2, "<i2")
    x = np.concatenate([lead, s, gap, s, np.zeros(RATE, "<i2")])
    kinds = [e.kind for e in EnergyVad(RATE).process(x.tobytes())]
    assert kinds == ["start", "stop"]


def test_speaking_property_tracks_events() -> None:
    x, _, _ = _scene(RATE)
    vad = EnergyVad(RATE)
    states = []
    for i in range(0, len(x), 320):
        for ev in vad.process(x[i : i + 320].tobytes()):
            states.append((ev.kind, vad.speaking))
    assert states == [("start", True), ("stop", False)]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=40))
def test_chunking_invariance(cuts: list[int]) -> None:
    x, _, _ = _scene(8000, lead_ms=500, tail_ms=700)
    data = x.tobytes()
    whole = EnergyVad(8000).process(data)
    vad = EnergyVad(8000)
    got: list[VadEvent] = []
    pos = 0
    for c in cuts:
        got += vad.process(data[pos : pos + c])
        pos += c
    got += vad.process(data[pos:])
    assert got == whole


def test_reset_restarts_sample_count() -> None:
    x, first, _ = _scene(RATE)
    vad = EnergyVad(RATE)
    vad.process(x[: first + RATE // 2].tobytes())
    assert vad.speaking
    vad.reset()
    assert not vad.speaking
    events = vad.process(x.tobytes())
    assert events[0].sample == EnergyVad(RATE).process(x.tobytes())[0].sample


def test_event_ms() -> None:
    assert VadEvent("start", 12000).ms(24000) == 500


def test_bad_parameters() -> None:
    with pytest.raises(AudioFormatError, match="stop_db"):
        EnergyVad(RATE, start_db=6, stop_db=10)
    with pytest.raises(AudioFormatError):
        EnergyVad(0)
    with pytest.raises(AudioFormatError):
        EnergyVad(8000, frame_ms=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 40)),  # (loudness class, frames)
        min_size=1,
        max_size=30,
    )
)
def test_events_alternate_and_move_forward(segments: list[tuple[int, int]]) -> None:
    """Any sequence of silence / noise / speech-like bursts: start and stop alternate, begin
    with start, their samples never go backwards, and `speaking` matches the last event."""
    rng = np.random.default_rng(len(segments))
    sigmas = (0.0, 30.0, 1000.0, 8000.0)
    x = np.concatenate([rng.normal(0, sigmas[k], n * 160) for k, n in segments])
    vad = EnergyVad(8000)
    events = vad.process(np.clip(x, -32768, 32767).astype("<i2").tobytes())
    kinds = [e.kind for e in events]
    assert kinds == ["start", "stop"] * (len(kinds) // 2) + ["start"] * (len(kinds) % 2)
    samples = [e.sample for e in events]
    assert samples == sorted(samples)
    assert all(0 <= s <= len(x) for s in samples)
    assert vad.speaking == (bool(kinds) and kinds[-1] == "start")
