"""What the offline engine remembers of a reply it spoke, and how long its stages took.

A reply's audio is one segment; each sentence knows which milliseconds of it it spans, so a
barge-in reported as "heard up to N ms" cuts the record of the reply to the words heard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReplyRecord", "SpokenSentence", "TurnTiming"]


@dataclass
class TurnTiming:
    """One answer's stages, in seconds from the end of the user's turn (or from the typed
    turn): what the benchmark reads. `early_stt`: the transcript was made during the pause,
    before the turn ended."""

    stt_s: float | None = None
    first_token_s: float | None = None
    first_sentence_s: float | None = None
    first_audio_s: float | None = None
    early_stt: bool = False
    started: float = field(default_factory=time.monotonic)

    def mark(self, stage: str) -> None:
        if getattr(self, stage) is None:
            setattr(self, stage, time.monotonic() - self.started)


@dataclass
class SpokenSentence:
    text: str
    start_ms: float
    end_ms: float


@dataclass
class ReplyRecord:
    reply_id: str
    sentences: list[SpokenSentence] = field(default_factory=list)
    audio_ms: float = 0.0
    message: dict[str, Any] | None = None  # its entry in the conversation, cut on barge-in

    @property
    def spoken(self) -> str:
        return " ".join(s.text for s in self.sentences)

    def heard(self, heard_ms: int) -> str:
        """The text up to `heard_ms` of its audio: whole sentences, then the words of the
        one that was playing in proportion to how much of it played."""
        words: list[str] = []
        for s in self.sentences:
            if heard_ms >= s.end_ms:
                words.append(s.text)
                continue
            if heard_ms > s.start_ms:
                part = s.text.split()
                share = (heard_ms - s.start_ms) / max(1.0, s.end_ms - s.start_ms)
                words.append(" ".join(part[: int(len(part) * share)]))
            break
        return " ".join(w for w in words if w)
