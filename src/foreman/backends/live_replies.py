"""Replies and segments inferred from GPT-Live's continuous output track, sans I/O.

GPT-Live streams one real-time audio track for the whole session (digital silence between
replies) and says nothing about turns: no response ids, no "audio done". Foreman's session
thinks in replies, segments and `AssistantIdle`, so this class infers them:

* a reply starts at the first chunk that carries speech (or an assistant transcript piece:
  it may come before the audio) and ends after `hangover_ms` of track silence; its audio,
  the trailing silence included, is one segment named like the reply;
* silence outside a reply is *filler*: `AssistantAudio` with segment and reply empty, which
  the endpoint plays but never counts as "playing", so `end_call` does not wait for a track
  that never ends;
* the assistant is busy while a reply runs, while delegated work is owed something, and for
  a grace period (`answer_grace_ms` of track time) after something should make the model
  speak (an instruction, a typed turn, a delegation that finished) until a reply starts;
  `AssistantIdle` is emitted on each change from busy to idle.

Time is the track itself (the ms of audio fed), never the wall clock.
"""

from __future__ import annotations

import itertools
from typing import Final

from foreman.audio.formats import AudioFormat
from foreman.audio.levels import SILENCE_PEAK, peak
from foreman.backends import interface as b

__all__ = ["TrackReplies"]

HANGOVER_MS: Final = 700  # longer than the pause between two sentences of one reply
ANSWER_GRACE_MS: Final = 2500


class TrackReplies:
    __slots__ = (
        "_expect_ms", "_fmt", "_hangover_ms", "_ids", "_silent_ms", "_threshold", "_was_busy",
        "_work", "answer_grace_ms", "replies", "reply", "track_ms",
    )  # fmt: skip

    def __init__(
        self,
        fmt: AudioFormat,
        *,
        hangover_ms: int = HANGOVER_MS,
        answer_grace_ms: int = ANSWER_GRACE_MS,
        threshold: int = SILENCE_PEAK,
    ) -> None:
        self._fmt = fmt
        self._hangover_ms = hangover_ms
        self.answer_grace_ms = answer_grace_ms
        self._threshold = threshold
        self._ids = itertools.count(1)
        self.reply: str | None = None
        self._silent_ms = 0.0
        self._expect_ms: float | None = None
        self._work = False
        self._was_busy = False
        self.track_ms = 0.0
        self.replies = 0

    @property
    def busy(self) -> bool:
        return self.reply is not None or self._expect_ms is not None or self._work

    @property
    def speaking(self) -> bool:
        """A reply runs, or one is expected soon."""
        return self.reply is not None or self._expect_ms is not None

    def _start(self, out: list[b.BackendEvent]) -> str:
        reply = f"live-reply-{next(self._ids)}"
        self.reply, self._silent_ms, self._expect_ms = reply, 0.0, None
        self.replies += 1
        out.append(b.ReplyStarted(reply))
        return reply

    def _settle(self, out: list[b.BackendEvent]) -> list[b.BackendEvent]:
        busy = self.busy
        if self._was_busy and not busy:
            out.append(b.AssistantIdle())
        self._was_busy = busy
        return out

    # --- inputs ------------------------------------------------------------------------------
    def audio(self, chunk: bytes) -> list[b.BackendEvent]:
        """One decoded chunk of the track: the events to emit, its `AssistantAudio` included."""
        out: list[b.BackendEvent] = []
        ms = self._fmt.ms_for_bytes(len(chunk))
        self.track_ms += ms
        loud = peak(chunk, self._fmt) >= self._threshold
        reply = self.reply
        if reply is None and loud:
            reply = self._start(out)
        if reply is None:
            out.append(b.AssistantAudio(chunk, "", ""))  # filler
            if self._expect_ms is not None:
                self._expect_ms -= ms
                if self._expect_ms <= 0:
                    self._expect_ms = None
            return self._settle(out)
        out.append(b.AssistantAudio(chunk, reply, reply))
        self._silent_ms = 0.0 if loud else self._silent_ms + ms
        if self._silent_ms >= self._hangover_ms:
            self.reply = None
            out.append(b.SegmentEnded(reply))
            out.append(b.ReplyEnded(reply))
        return self._settle(out)

    def transcript(self, text: str, start_ms: int, end_ms: int) -> list[b.BackendEvent]:
        """An assistant transcript piece: it belongs to the running reply (or starts one)."""
        out: list[b.BackendEvent] = []
        reply = self.reply or self._start(out)
        self._silent_ms = 0.0
        out.append(b.TranscriptSegment("assistant", text, False, start_ms, end_ms, reply=reply))
        return self._settle(out)

    def expect_speech(self) -> list[b.BackendEvent]:
        """Something should make the model speak soon: busy until a reply starts or the
        grace period of track time has passed."""
        if self.reply is None:
            self._expect_ms = float(self.answer_grace_ms)
        return self._settle([])

    def lost(self) -> list[b.BackendEvent]:
        """The session is gone: the reply that ran ends `incomplete`, and nothing is owed
        any more (a new session is asked afresh for what it should say)."""
        out: list[b.BackendEvent] = []
        reply = self.reply
        if reply is not None:
            self.reply = None
            out.append(b.SegmentEnded(reply))
            out.append(b.ReplyEnded(reply, "incomplete", "connection lost"))
        self._expect_ms, self._work = None, False
        return self._settle(out)

    def work(self, busy: bool) -> list[b.BackendEvent]:
        """Whether delegated work is still owed something."""
        self._work = busy
        return self._settle([])
