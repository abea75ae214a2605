"""The wake sentinel's core, fed real speech (flite) in 20 ms frames as a microphone would."""

from __future__ import annotations

import pytest

from foreman.audio.wake import NotThePhrase, Recognise, WakeSentinel, Woken
from foreman.testing.voices import flite_speech, have_flite, with_silence

pytestmark = pytest.mark.skipif(not have_flite(), reason="flite is not installed")
RATE = 16000
FRAME = RATE * 20 // 1000 * 2


def feed(sentinel: WakeSentinel, pcm: bytes, t0: float = 0.0) -> list[Recognise]:
    out: list[Recognise] = []
    for i in range(0, len(pcm), FRAME):
        for ev in sentinel.feed(pcm[i : i + FRAME], t0 + i / (RATE * 2)):
            assert isinstance(ev, Recognise)
            out.append(ev)
    return out


def test_a_spoken_phrase_becomes_one_segment_to_recognise() -> None:
    speech = flite_speech("hey vim", "slt", RATE)
    segments = feed(WakeSentinel("hey vim"), with_silence(speech, RATE))
    assert len(segments) == 1
    # The segment holds the speech (give or take the VAD's edges), not the silence around it.
    assert 0.6 * len(speech) <= len(segments[0].audio) <= len(speech) + RATE  # < 0.5 s extra


def test_woken_carries_what_was_said_after_the_phrase() -> None:
    sentinel = WakeSentinel("hey vim", cooldown_s=2.0)
    (seg,) = feed(sentinel, with_silence(flite_speech("hey vim", "rms", RATE), RATE))
    later = with_silence(flite_speech("what time is it", "rms", RATE), RATE, 0, 0)
    feed(sentinel, later, t0=2.0)  # said while the phrase was being recognised
    woken = sentinel.heard(seg.segment, "Hey Vim.", now=3.0)
    assert isinstance(woken, Woken)
    assert woken.match.after == ""
    # Only what followed the phrase's segment: the trailing silence and the question.
    assert len(later) <= len(woken.follow_up) < len(later) + RATE * 2


def test_words_in_the_same_breath_send_the_whole_segment() -> None:
    sentinel = WakeSentinel("hey vim")
    (seg,) = feed(sentinel, with_silence(flite_speech("hey vim open the file", "awb", RATE), RATE))
    woken = sentinel.heard(seg.segment, "Hey Vim, open the file.", now=5.0)
    assert isinstance(woken, Woken) and woken.match.after == "open the file"
    assert len(woken.follow_up) >= len(seg.audio)


def test_other_words_and_the_cooldown_do_not_wake() -> None:
    sentinel = WakeSentinel("hey vim", cooldown_s=2.0)
    (a,) = feed(sentinel, with_silence(flite_speech("hey jim", "slt", RATE), RATE))
    assert sentinel.heard(a.segment, "Hey Jim", now=1.0) == NotThePhrase(a.segment, "Hey Jim")
    sentinel.resume(now=10.0)  # e.g. voice mode just ended
    (b,) = feed(sentinel, with_silence(flite_speech("hey vim", "slt", RATE), RATE), t0=10.0)
    late = sentinel.heard(b.segment, "Hey Vim", now=11.0)
    assert isinstance(late, NotThePhrase) and late.cooling_down
    (c,) = feed(sentinel, with_silence(flite_speech("hey vim", "slt", RATE), RATE), t0=12.5)
    assert isinstance(sentinel.heard(c.segment, "Hey Vim", now=13.0), Woken)


def test_paused_hears_nothing_and_forgets_pending_segments() -> None:
    sentinel = WakeSentinel("hey vim")
    (seg,) = feed(sentinel, with_silence(flite_speech("hey vim", "kal16", RATE), RATE))
    sentinel.pause()
    assert feed(sentinel, with_silence(flite_speech("hey vim", "kal16", RATE), RATE)) == []
    assert sentinel.heard(seg.segment, "Hey Vim", now=1.0) is None
    sentinel.resume(now=1.0, cooldown=False)
    assert len(feed(sentinel, with_silence(flite_speech("hey vim", "kal16", RATE), RATE))) == 1


def test_long_speech_is_cut_into_pieces() -> None:
    sentinel = WakeSentinel("hey vim", max_segment_ms=1500)
    text = "this is a rather long sentence that goes on and on without any pause at all"
    segments = feed(sentinel, with_silence(flite_speech(text, "slt", RATE), RATE))
    assert len(segments) >= 2
    assert all(len(s.audio) <= RATE * 2 * 1.5 + 2 for s in segments)
