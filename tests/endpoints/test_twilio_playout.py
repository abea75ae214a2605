"""TwilioPlayout: frames, marks, what the caller heard, and where a barge-in cut. No asyncio:
the tests play Twilio (echoing marks in order) on a manual clock."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from foreman.audio.formats import PCM16_24K, PCMU_8K
from foreman.audio.pacing import Chunk
from foreman.audio.playback import Mark
from foreman.endpoints.twilio_playout import TwilioPlayout

FRAME = 160  # bytes of µ-law: 20 ms
ULAW_MS = 8  # µ-law bytes per ms


def ulaw(ms: int) -> bytes:
    return b"\x7f" * (ULAW_MS * ms)


def pcm16(ms: int) -> bytes:
    """A 440 Hz tone at 24 kHz (48 bytes per ms)."""
    t = np.arange(24 * ms) / 24000
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


class Twilio:
    """The far end: plays what it is sent and echoes marks in order."""

    def __init__(self, playout: TwilioPlayout) -> None:
        self.playout = playout
        self.now = 0.0
        self.chunks: list[Chunk] = []
        self.pending: list[Mark] = []  # marks sent, not yet echoed

    def pump(self) -> list[Chunk]:
        """Send every chunk the pacer allows now, each followed by its mark."""
        sent = []
        while (chunk := self.playout.next_chunk(self.now)) is not None:
            sent.append(chunk)
            mark = self.playout.chunk_sent(chunk)
            if mark is not None:
                self.pending.append(mark)
        self.chunks += sent
        return sent

    def echo(self, count: int | None = None) -> list[tuple[str, int] | None]:
        """Echo the oldest `count` pending marks (all by default)."""
        count = len(self.pending) if count is None else count
        out = [self.playout.mark_echo(m.name) for m in self.pending[:count]]
        del self.pending[:count]
        return out

    def play_all(self, step_s: float = 0.1) -> list[tuple[str, int] | None]:
        """Let time pass until everything queued was sent and echoed; returns the echoes."""
        echoes = []
        for _ in range(10_000):
            self.pump()
            echoes += self.echo()
            if not self.playout.playing:
                return echoes
            self.now += step_s
        raise AssertionError("playout never drained")


def playout(max_lead_ms: int = 400, max_chunk_frames: int = 5) -> TwilioPlayout:
    return TwilioPlayout(max_lead_ms=max_lead_ms, max_chunk_frames=max_chunk_frames)


# --- frames and marks ------------------------------------------------------------------------
def test_whole_frames_and_a_mark_after_every_chunk() -> None:
    p = playout()
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(130))  # 6.5 frames: the half frame waits for more audio
    chunks = twilio.pump()
    assert [len(c.payload) for c in chunks] == [5 * FRAME, FRAME]
    assert len(twilio.pending) == 2
    assert p.next_chunk(twilio.now) is None
    p.end_segment("seg_A")  # now the last half frame is padded with silence
    [last] = twilio.pump()
    assert last.payload == ulaw(10) + b"\xff" * 80
    assert last.audio_bytes == 80  # the padding is not audio the caller hears of the segment
    assert [m.end_ms for m in twilio.pending] == [100, 120, 130]


def test_the_lead_over_real_time_is_bounded() -> None:
    p = playout(max_lead_ms=200, max_chunk_frames=5)
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(1000))
    assert sum(len(c.payload) for c in twilio.pump()) == 200 * ULAW_MS
    assert p.delay(twilio.now) == pytest.approx(0.1)  # room for a whole chunk in 100 ms
    twilio.now = 0.1
    assert sum(len(c.payload) for c in twilio.pump()) == 100 * ULAW_MS


def test_mark_echo_reports_the_segment_and_ms_heard() -> None:
    p = playout()
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(200))
    p.end_segment("seg_A")
    twilio.pump()
    assert twilio.echo(1) == [("seg_A", 100)]
    assert p.playing
    assert twilio.echo() == [("seg_A", 200)]
    assert not p.playing


@pytest.mark.parametrize("name", ["", "not-ours", "seg_A:100:g0:m99", "seg_A:x:g0:m1"])
def test_an_echo_that_is_not_ours_is_ignored(name: str) -> None:
    p = playout()
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(100))
    twilio.pump()
    assert p.mark_echo(name) is None
    assert p.playing


# --- barge-in ----------------------------------------------------------------------------------
def test_flush_with_nothing_queued_or_playing_is_none() -> None:
    p = playout()
    assert p.flush(0.0) is None
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(100))
    p.end_segment("seg_A")
    twilio.play_all()
    assert p.flush(twilio.now) is None


def test_flush_cuts_at_the_last_echoed_mark_and_ignores_the_echoes_it_caused() -> None:
    p = playout()
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(1000))
    twilio.pump()  # 400 ms out
    assert twilio.echo(2) == [("seg_A", 100), ("seg_A", 200)]
    assert p.flush(twilio.now) == ("seg_A", 200)
    assert twilio.echo() == [None, None]  # Twilio echoes pending marks after a clear
    assert not p.playing
    assert p.next_chunk(twilio.now) is None  # the rest was dropped


def test_a_chunk_being_sent_when_the_flush_comes_is_cut_and_gets_no_mark() -> None:
    """Regression: with the last chunk handed to the pacer and not yet reported sent, flush
    saw nothing queued or playing and returned None, so no clear went out and the reply was
    not cut."""
    p = playout()
    p.audio("seg_A", ulaw(100))
    p.end_segment("seg_A")
    chunk = p.next_chunk(0.0)
    assert chunk is not None and not p.out.has_audio
    assert p.flush(0.0) == ("seg_A", 0)  # nothing of it was confirmed
    assert p.chunk_sent(chunk) is None
    assert p.flush(0.0) is None  # the second barge-in has nothing left to cut


def test_flush_of_audio_never_sent_cuts_the_queued_segment_at_what_was_heard() -> None:
    p = playout()
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(100))
    p.end_segment("seg_A")
    twilio.play_all()
    p.audio("seg_B", ulaw(100))
    assert p.flush(twilio.now) == ("seg_B", 0)


def test_audio_still_in_the_converter_is_cut_too() -> None:
    """Regression: the resampler holds back the first tens of ms of a segment; a barge-in
    then found nothing queued and returned None, and that reply played on."""
    p = playout()
    p.set_model_format(PCM16_24K)
    twilio = Twilio(p)
    p.audio("seg_A", pcm16(97))
    p.end_segment("seg_A")
    twilio.pump()
    twilio.echo()
    p.audio("seg_B", pcm16(50))
    cut = p.flush(twilio.now)
    assert cut is not None and cut[0] == "seg_B" and cut[1] == 0


def test_heard_survives_an_underrun_in_the_middle_of_a_segment() -> None:
    """Regression: when every mark had echoed while the segment was still streaming (the
    model's audio arrived slower than real time), the segment was forgotten as finished, so
    heard restarted from 0 and a barge-in cut it at the wrong place."""
    p = playout()
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(200))
    twilio.pump()
    assert twilio.echo() == [("seg_A", 100), ("seg_A", 200)]
    assert not p.playing  # an underrun: everything sent has played
    twilio.now = 0.3
    p.audio("seg_A", ulaw(100))
    twilio.pump()
    assert twilio.echo() == [("seg_A", 300)]
    twilio.now = 0.5
    p.audio("seg_A", ulaw(100))
    twilio.pump()
    assert p.flush(twilio.now) == ("seg_A", 300)


def test_a_barge_in_during_an_underrun_cuts_the_segment_still_streaming() -> None:
    """Regression: everything sent had played and the rest of the segment had not arrived
    yet; flush returned None, so the session neither cut the reply nor told the model."""
    p = playout()
    twilio = Twilio(p)
    p.audio("seg_A", ulaw(200))
    twilio.pump()
    twilio.echo()
    assert not p.playing
    assert p.flush(twilio.now) == ("seg_A", 200)
    p.end_segment("seg_A")
    assert p.flush(twilio.now) is None


# --- conversion --------------------------------------------------------------------------------
@pytest.mark.parametrize("pieces_ms", [[1000], [7, 13, 480, 500], [1] * 300, [333, 333, 334]])
def test_pcm16_24k_becomes_ulaw_of_the_same_duration(pieces_ms: list[int]) -> None:
    p = playout()
    p.set_model_format(PCM16_24K)
    twilio = Twilio(p)
    audio = pcm16(sum(pieces_ms))
    at = 0
    for ms in pieces_ms:
        p.audio("seg_A", audio[at : at + 48 * ms])
        at += 48 * ms
    p.end_segment("seg_A")
    twilio.play_all()
    sent_ms = sum(c.audio_bytes for c in twilio.chunks) / ULAW_MS
    assert sent_ms == pytest.approx(sum(pieces_ms), abs=1)
    assert all(len(c.payload) % FRAME == 0 for c in twilio.chunks)


def test_ulaw_from_the_model_passes_through_untouched() -> None:
    p = playout()
    twilio = Twilio(p)
    audio = bytes(range(256)) * 5  # 1280 bytes: 8 frames
    p.audio("seg_A", audio)
    twilio.pump()
    assert b"".join(c.payload for c in twilio.chunks) == audio


# --- bounded state -------------------------------------------------------------------------------
def tracked(p: TwilioPlayout) -> set[str]:
    """Segments the playout still keeps anything about (white box: the bound is the point)."""
    return set(p._sent) | set(p._received) | {key[0] for key in p.tracker._items}


def test_state_is_forgotten_once_segments_have_played() -> None:
    p = playout()
    twilio = Twilio(p)
    for i in range(50):
        p.audio(f"seg_{i}", ulaw(60))
        p.end_segment(f"seg_{i}")
        twilio.play_all()
        if i % 3 == 0:  # some are cut off before they were sent at all
            p.audio(f"cut_{i}", ulaw(60))
            p.flush(twilio.now)
            twilio.echo()
    assert len(tracked(p)) <= 1


# --- property ------------------------------------------------------------------------------------
OPS = st.one_of(
    st.tuples(st.just("audio"), st.integers(1, 250)),
    st.tuples(st.just("end_segment")),
    st.tuples(st.just("pump")),
    st.tuples(st.just("echo"), st.integers(1, 4)),
    st.tuples(st.just("wait"), st.sampled_from([0.02, 0.1, 0.35])),
    st.tuples(st.just("flush")),
)


@settings(max_examples=250, deadline=None)
@given(ops=st.lists(OPS, max_size=40), convert=st.booleans())
@example(  # an underrun in the middle of a segment
    ops=[("audio", 200), ("pump",), ("echo", 4), ("wait", 0.35), ("audio", 100), ("pump",),
         ("echo", 1), ("flush",)],
    convert=False,
)  # fmt: skip
def test_heard_never_exceeds_what_was_sent_and_never_decreases(
    ops: list[tuple[Any, ...]], convert: bool
) -> None:
    p = playout()
    fmt = PCM16_24K if convert else PCMU_8K
    p.set_model_format(fmt)
    twilio = Twilio(p)
    segment, n = "seg_1", 1
    model_ms: dict[str, float] = {}  # what the model sent of each segment
    heard: dict[str, int] = {}

    def check(result: tuple[str, int] | None) -> None:
        if result is None:
            return
        seg, ms = result
        assert 0 <= ms <= model_ms[seg], (seg, ms, model_ms[seg])
        assert ms >= heard.get(seg, 0), f"heard of {seg} went back from {heard[seg]} to {ms}"
        heard[seg] = ms

    for op in ops:
        match op:
            case ("audio", ms):
                audio = pcm16(ms) if convert else ulaw(ms)
                model_ms[segment] = model_ms.get(segment, 0) + fmt.ms_for_bytes(len(audio))
                p.audio(segment, audio)
            case ("end_segment",):
                p.end_segment(segment)
                n += 1
                segment = f"seg_{n}"
            case ("pump",):
                for chunk in twilio.pump():
                    assert len(chunk.payload) % FRAME == 0 and chunk.payload
                    assert 0 < chunk.audio_bytes <= len(chunk.payload)
            case ("echo", count):
                for result in twilio.echo(count):
                    check(result)
            case ("wait", seconds):
                twilio.now += seconds
            case ("flush",):
                check(p.flush(twilio.now))
                if segment in model_ms:  # the session would not play the cut segment on
                    n += 1
                    segment = f"seg_{n}"
    p.end_segment(segment)
    for result in [*twilio.echo(), *twilio.play_all()]:
        check(result)
    assert len(tracked(p)) <= 1  # bounded once everything has played
