"""The wake sentinel's decision core: speech segments in, "recognise this" and "woken" out.

Sans-I/O. Fed the microphone's PCM16 (or a WAV's, through the same path) with the time as an
argument, `WakeSentinel`:

* segments speech with an energy VAD; each segment starts `pre_roll_ms` before the detector
  fired (the first syllable's onset is below its threshold) and is cut at `max_segment_ms`
  so a long monologue is still looked at;
* hands each segment of at least `min_segment_ms` out as `Recognise` (the runner sends it to
  a phrase recogniser, off the event loop) and keeps the audio that follows;
* takes the recogniser's text back (`heard`): the phrase found (tolerantly, see
  `phrase_match`) and no cooldown running → `Woken`, carrying the audio the model must hear
  (what was said after the phrase: the rest of the segment when words followed it in the
  same breath, and everything captured since the segment ended); otherwise `NotThePhrase`;
* does nothing while paused (the assistant is speaking, voice mode runs, wake is off), and
  after `resume(now)` ignores a match until the cooldown has passed.

The runner decides what "woken" does (start a voice session) and how to recognise.
"""

from __future__ import annotations

from dataclasses import dataclass

from foreman.audio.phrase_match import PhraseMatch, PhraseMatcher
from foreman.audio.vad import EnergyVad

__all__ = ["NotThePhrase", "Recognise", "SentinelEvent", "WakeSentinel", "Woken"]


@dataclass(frozen=True, slots=True)
class Recognise:
    """Recognise `audio` (PCM16 at the sentinel's rate) and call `heard(segment, text)`."""

    segment: int
    audio: bytes


@dataclass(frozen=True, slots=True)
class Woken:
    """The phrase was heard. `follow_up` is PCM16 the model should hear first."""

    segment: int
    text: str
    match: PhraseMatch
    follow_up: bytes


@dataclass(frozen=True, slots=True)
class NotThePhrase:
    """A segment was recognised and was not the phrase (or came within the cooldown)."""

    segment: int
    text: str
    cooling_down: bool = False


SentinelEvent = Recognise | Woken | NotThePhrase


@dataclass(slots=True)
class _Pending:
    start: int  # sample offsets in the stream
    end: int


class WakeSentinel:
    def __init__(
        self,
        phrase: str,
        sample_rate: int = 16000,
        *,
        pre_roll_ms: int = 300,
        min_segment_ms: int = 250,
        max_segment_ms: int = 6000,
        end_silence_ms: int = 350,
        cooldown_s: float = 2.0,
        follow_up_max_ms: int = 15000,
        max_pending: int = 3,
    ) -> None:
        self.matcher = PhraseMatcher(phrase)
        self.sample_rate = sample_rate
        self._spm = sample_rate / 1000  # samples per ms
        self._pre_roll = int(pre_roll_ms * self._spm)
        self._min_segment = int(min_segment_ms * self._spm)
        self._max_segment = int(max_segment_ms * self._spm)
        self._end_silence_ms = end_silence_ms
        self.cooldown_s = cooldown_s
        # The history kept: a segment, its pre-roll and what followed it while it was being
        # recognised (bounded: the oldest audio goes first).
        self._keep = self._pre_roll + self._max_segment + int(follow_up_max_ms * self._spm)
        self._max_pending = max_pending
        self.paused = False
        self._quiet_until = 0.0
        self._next_id = 0
        self.dropped_segments = 0  # recognitions skipped because too many were pending
        self.segments_seen = 0  # speech segments long enough to look at
        self._reset_stream()

    def _reset_stream(self) -> None:
        self._vad = EnergyVad(self.sample_rate, min_silence_ms=self._end_silence_ms)
        self._history = bytearray()
        self._history_start = 0  # stream sample offset of _history[0]
        self._pos = 0  # samples fed
        self._open: int | None = None  # start of the segment being spoken
        self._pending: dict[int, _Pending] = {}

    # control ----------------------------------------------------------------------------
    def pause(self) -> None:
        """Stop listening (voice mode, wake off); what was pending is forgotten."""
        self.paused = True
        self._reset_stream()

    def resume(self, now: float, *, cooldown: bool = True) -> None:
        """Listen again; with `cooldown`, no wake-up before `cooldown_s` from `now`."""
        if self.paused:
            self._reset_stream()
        self.paused = False
        if cooldown:
            self._quiet_until = max(self._quiet_until, now + self.cooldown_s)

    @property
    def speaking(self) -> bool:
        return self._open is not None

    @property
    def pending(self) -> int:
        return len(self._pending)

    # audio ------------------------------------------------------------------------------
    def feed(self, pcm16: bytes, now: float) -> list[SentinelEvent]:
        """Microphone audio (any length). Returns the segments to recognise."""
        if self.paused or not pcm16:
            return []
        self._history += pcm16
        self._pos += len(pcm16) // 2
        self._trim()
        out: list[SentinelEvent] = []
        for ev in self._vad.process(pcm16):
            if ev.kind == "start":
                self._open = max(0, ev.sample - self._pre_roll, self._history_start)
            elif self._open is not None:
                self._close(ev.sample, out)
        if self._open is not None and self._pos - self._open >= self._max_segment:
            cut = self._open + self._max_segment
            self._close(cut, out)
            self._open = cut  # the speech goes on: the next piece starts at the cut
        return out

    def _close(self, end: int, out: list[SentinelEvent]) -> None:
        start, self._open = self._open, None
        assert start is not None
        if end - start < self._min_segment:
            return
        self.segments_seen += 1
        if len(self._pending) >= self._max_pending:
            self.dropped_segments += 1
            return
        seg = self._next_id
        self._next_id += 1
        self._pending[seg] = _Pending(start, end)
        out.append(Recognise(seg, self._slice(start, end)))

    def _slice(self, start: int, end: int) -> bytes:
        a = max(0, (start - self._history_start) * 2)
        b = max(0, (end - self._history_start) * 2)
        return bytes(self._history[a:b])

    def _trim(self) -> None:
        excess = len(self._history) // 2 - self._keep
        if excess > 0:
            del self._history[: excess * 2]
            self._history_start += excess

    # recognition ------------------------------------------------------------------------
    def heard(self, segment: int, text: str, now: float) -> SentinelEvent | None:
        """The recogniser's text for `segment`. None when that segment is no longer wanted
        (paused since, or already answered)."""
        pending = self._pending.pop(segment, None)
        if pending is None or self.paused:
            return None
        match = self.matcher.find(text)
        if match is None:
            return NotThePhrase(segment, text)
        if now < self._quiet_until:
            return NotThePhrase(segment, text, cooling_down=True)
        # Words in the same breath after the phrase: the model hears the whole segment
        # (the phrase included: harmless, and no word is lost at a guessed cut). Otherwise
        # only what came after the segment.
        start = pending.start if match.after else pending.end
        follow_up = self._slice(start, self._pos)
        self._quiet_until = now + self.cooldown_s
        self._pending.clear()  # what was said after the phrase is in `follow_up`
        return Woken(segment, text, match, follow_up)
