"""The offline engine's listener without sockets or tasks: real speech through Silero VAD,
and a scripted VAD where the exact samples matter."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from foreman.audio.silero import SileroVad
from foreman.audio.vad import VadEvent
from foreman.backends.local_listen import (
    EarlyUtterance,
    FinalUtterance,
    Listener,
    ListenEvent,
    SpeechStart,
    SpeechStop,
)
from foreman.testing.speech import speak, trim_silence

RATE = 16_000
FRAME = 640  # 20 ms of PCM16


def _silence(ms: int) -> bytes:
    return bytes(ms * RATE // 1000 * 2)


def _feed(listener: Listener, audio: bytes) -> list[ListenEvent]:
    events: list[ListenEvent] = []
    for i in range(0, len(audio), FRAME):
        events += listener.feed(audio[i : i + FRAME])
    return events


def _silero(end_of_speech_ms: int = 500) -> SileroVad:
    return SileroVad(RATE, min_silence_ms=end_of_speech_ms)


def test_the_early_utterance_is_the_final_one_when_the_pause_ends_the_turn() -> None:
    listener = Listener(_silero(), max_utterance_s=30, early_ms=150)
    events = _feed(listener, speak("What is the capital of France?", RATE) + _silence(900))
    kinds = [type(e) for e in events]
    assert kinds.index(SpeechStart) < kinds.index(EarlyUtterance) < kinds.index(SpeechStop)
    (final,) = [e for e in events if isinstance(e, FinalUtterance)]
    early = [e for e in events if isinstance(e, EarlyUtterance)][-1]
    assert early.span == final.span and early.pcm == final.pcm
    # Handed over while the pause was still too short to end the turn.
    assert events.index(early) < events.index(final)
    assert len(final.pcm) / 2 / RATE > 1.0  # the whole question, not a fragment


def test_a_pause_the_caller_talks_through_gives_an_early_span_that_does_not_match() -> None:
    listener = Listener(_silero(), max_utterance_s=30, early_ms=150)
    first = trim_silence(speak("Please call my sister", RATE))
    second = trim_silence(speak("and tell her I am late.", RATE))
    events = _feed(listener, first + _silence(300) + second + _silence(900))
    finals = [e for e in events if isinstance(e, FinalUtterance)]
    earlies = [e for e in events if isinstance(e, EarlyUtterance)]
    assert len(finals) == 1  # one turn: the pause was shorter than end_of_speech_ms
    assert len(earlies) == 2  # the mid-sentence pause, then the real end
    assert earlies[0].span[1] < finals[0].span[1] and earlies[0].span != finals[0].span
    assert earlies[1].span == finals[0].span
    assert finals[0].pcm.startswith(earlies[0].pcm)  # the guess was a prefix of the turn


def test_early_utterances_are_off_at_zero() -> None:
    listener = Listener(_silero(), max_utterance_s=30, early_ms=0)
    events = _feed(listener, speak("What time is it?", RATE) + _silence(900))
    assert not [e for e in events if isinstance(e, EarlyUtterance)]
    assert [e for e in events if isinstance(e, FinalUtterance)]


@dataclass
class ScriptedVad:
    """`script`: the events to report, keyed by the input sample at which each is reported
    (a stop is reported well after its own sample, as a real VAD's is); `pause` is what
    `pause_started` answers."""

    script: dict[int, VadEvent] = field(default_factory=dict)
    pause: int | None = None
    pos: int = 0
    resets: int = 0

    @property
    def pause_started(self) -> int | None:
        return self.pause

    def process(self, pcm16: bytes) -> list[VadEvent]:
        end = self.pos + len(pcm16) // 2
        events = [e for at, e in sorted(self.script.items()) if self.pos <= at < end]
        self.pos = end
        return events

    def reset(self) -> None:
        self.resets += 1
        self.pos = 0
        self.script.clear()


def _tone(ms: int, value: int) -> bytes:
    return value.to_bytes(2, "little", signed=True) * (ms * RATE // 1000)


def test_the_pre_roll_and_tail_frame_the_utterance_exactly() -> None:
    vad = ScriptedVad({8000: VadEvent("start", 8000), 32000: VadEvent("stop", 24000)})
    listener = Listener(vad, max_utterance_s=30)
    audio = b"".join(_tone(100, n) for n in range(21))  # each 100 ms has its own sample value
    events = _feed(listener, audio)
    assert [type(e) for e in events] == [SpeechStart, SpeechStop, FinalUtterance]
    final = events[-1]
    assert isinstance(final, FinalUtterance)
    # 300 ms before the start, 150 ms after the stop.
    assert final.span == (8000 - 4800, 24000 + 2400)
    assert final.pcm == audio[(8000 - 4800) * 2 : (24000 + 2400) * 2]


def test_no_early_utterance_before_the_tail_is_in() -> None:
    vad = ScriptedVad({1600: VadEvent("start", 1600)})
    listener = Listener(vad, max_utterance_s=30, early_ms=100)  # raised to the 150 ms tail
    _feed(listener, _tone(400, 7))
    vad.pause = 6400 - 2240  # the pause began 140 ms before the end of what was fed
    assert listener.feed(b"") == []
    events = _feed(listener, _tone(20, 0))  # now 160 ms
    fed = _tone(400, 7) + _tone(20, 0)
    assert events == [EarlyUtterance((0, 4160 + 2400), fed[: 6560 * 2])]
    assert _feed(listener, _tone(20, 0)) == []  # the same pause is handed over once
    vad.pause = None  # the caller talks on; a later pause is a new guess
    _feed(listener, _tone(100, 7))
    vad.pause = 8320
    (again,) = _feed(listener, _tone(200, 0))
    assert isinstance(again, EarlyUtterance) and again.span == (0, 8320 + 2400)


def test_push_to_talk_release_and_the_length_cap_end_the_turn() -> None:
    vad = ScriptedVad({0: VadEvent("start", 0)})
    listener = Listener(vad, max_utterance_s=1.0)
    assert listener.end_turn() is None
    _feed(listener, _tone(500, 3))
    released = listener.end_turn()
    assert released is not None and released.span == (0, 8000) and vad.resets == 1
    assert not listener.hearing
    vad.script[0] = VadEvent("start", 0)  # the VAD restarted: its sample 0 is our 8000
    events = _feed(listener, _tone(1100, 4))
    (capped,) = [e for e in events if isinstance(e, FinalUtterance)]
    assert capped.span[0] == 8000 and capped.span[1] - capped.span[0] == RATE


@pytest.mark.parametrize("early_ms", [0, 150])
def test_silence_alone_is_no_utterance(early_ms: int) -> None:
    listener = Listener(_silero(), max_utterance_s=30, early_ms=early_ms)
    assert _feed(listener, _silence(2000)) == []
