"""The offline engine's ears, without I/O: 16 kHz PCM16 in, speech events and utterances out.

`Listener.feed` runs the audio through the VAD and keeps what a turn needs: a pre-roll before
the VAD's start (its first frame lags the first word), a tail after its stop (so a trailing
consonant is not clipped), and a cap on an utterance's length. It answers with events:

* `SpeechStart` at once, so the engine can stop talking (this engine has no server barge-in);
* `EarlyUtterance` when speech has paused for `early_ms`: the utterance so far, exactly the
  audio a `FinalUtterance` will carry if the pause lasts to `end_of_speech_ms`. Transcribing
  it during the rest of that wait takes speech to text (about half a second of Whisper on two
  cores) off the caller's wait; if the caller goes on talking, the early text is not used;
* `SpeechStop` and `FinalUtterance` when the pause ends the turn (or the cap, or
  `end_turn()` for push-to-talk).

Both utterance kinds carry a `span` (first and end sample): equal spans mean equal audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from foreman.audio.vad import VadEvent

__all__ = [
    "EarlyUtterance",
    "FinalUtterance",
    "ListenEvent",
    "Listener",
    "SpeechStart",
    "SpeechStop",
]

RATE = 16_000
PREROLL_MS = 300
TAIL_MS = 150

Span = tuple[int, int]


class Vad(Protocol):
    """What the listener needs of a VAD (`foreman.audio.silero.SileroVad` at 16 kHz)."""

    @property
    def pause_started(self) -> int | None: ...

    def process(self, pcm16: bytes) -> Sequence[VadEvent]: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SpeechStart:
    at_sample: int


@dataclass(frozen=True, slots=True)
class SpeechStop:
    at_sample: int


@dataclass(frozen=True, slots=True)
class EarlyUtterance:
    span: Span
    pcm: bytes


@dataclass(frozen=True, slots=True)
class FinalUtterance:
    span: Span
    pcm: bytes


ListenEvent = SpeechStart | SpeechStop | EarlyUtterance | FinalUtterance


def _samples(ms: int) -> int:
    return ms * RATE // 1000


class Listener:
    """One conversation's listening state. `early_ms` 0 turns early utterances off."""

    def __init__(self, vad: Vad, *, max_utterance_s: float, early_ms: int = 0) -> None:
        self._vad = vad
        self._max_utterance = int(max_utterance_s * RATE)
        # An early utterance must already hold the tail a final one would have.
        self._early = max(_samples(early_ms), _samples(TAIL_MS)) if early_ms > 0 else 0
        self._buffer = bytearray()  # input since the utterance began (or the pre-roll)
        self._buffer_start = 0  # sample index of _buffer[0]
        self._samples_in = 0
        self._start: int | None = None  # first sample of the utterance being heard
        self._vad_base = 0  # our sample index of the VAD's sample 0 (it restarts on reset)
        self._early_span: Span | None = None

    @property
    def hearing(self) -> bool:
        """An utterance has started and not ended."""
        return self._start is not None

    def feed(self, pcm: bytes) -> list[ListenEvent]:
        self._buffer += pcm
        self._samples_in += len(pcm) // 2
        out: list[ListenEvent] = []
        for event in self._vad.process(pcm):
            at = self._vad_base + event.sample
            if event.kind == "start" and self._start is None:
                self._start = max(self._buffer_start, at - _samples(PREROLL_MS))
                out.append(SpeechStart(at))
            elif event.kind == "stop" and self._start is not None:
                out.append(SpeechStop(at))
                out.append(self._cut(at + _samples(TAIL_MS)))
        if self._start is None:
            keep = _samples(PREROLL_MS) * 2
            excess = len(self._buffer) - keep
            if excess > 0:
                del self._buffer[:excess]
                self._buffer_start += excess // 2
        elif self._samples_in - self._start >= self._max_utterance:
            out.append(self._force_end())
        elif self._early:
            out.extend(self._maybe_early())
        return out

    def end_turn(self) -> FinalUtterance | None:
        """Push-to-talk release: the utterance being heard ends here (None if none)."""
        return self._force_end() if self._start is not None else None

    def _force_end(self) -> FinalUtterance:
        utterance = self._cut(self._samples_in)
        self._vad.reset()  # a forced end: the VAD starts afresh at our next sample
        self._vad_base = self._samples_in
        return utterance

    def _maybe_early(self) -> list[ListenEvent]:
        paused = self._vad.pause_started
        if paused is None or self._start is None:
            return []
        paused += self._vad_base
        end = paused + _samples(TAIL_MS)
        if self._samples_in - paused < self._early or end > self._samples_in:
            return []
        span = (self._start, end)
        if span == self._early_span:
            return []
        self._early_span = span
        return [EarlyUtterance(span, self._slice(span))]

    def _slice(self, span: Span) -> bytes:
        first, end = ((s - self._buffer_start) * 2 for s in span)
        return bytes(self._buffer[first:end])

    def _cut(self, end_sample: int) -> FinalUtterance:
        assert self._start is not None
        span = (self._start, min(end_sample, self._samples_in))
        pcm = self._slice(span)
        del self._buffer[: (span[1] - self._buffer_start) * 2]
        self._buffer_start = span[1]
        self._start = None
        self._early_span = None
        return FinalUtterance(span, pcm)
