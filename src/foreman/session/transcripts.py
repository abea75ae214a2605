"""Whole utterances from transcript pieces, decided without I/O.

Some backends send a final text per turn (Realtime: the user's completed transcription, the
assistant's transcript done); others send only pieces with timeline offsets and never mark
a turn's end (GPT-Live). Spoken confirmation, the event stream and history need whole
utterances either way. `UtteranceAssembler` collects pieces per speaker and closes an
utterance when a final text arrives (it replaces the pieces: it is the authoritative text).
For a speaker whose backend has never sent a final, an utterance also closes when the other
speaker starts or when no piece has come for `gap_s` (the caller passes the time in and
asks `due()` once the deadline it reported has passed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class Utterance:
    role: Role
    text: str


class _Open:
    __slots__ = ("parts", "touched")

    def __init__(self, now: float) -> None:
        self.parts: list[str] = []
        self.touched = now


class UtteranceAssembler:
    def __init__(self, gap_s: float = 0.8, *, finals: bool = False) -> None:
        """`finals`: the backend is known to end every utterance with a final text, so
        pieces never close one on their own (without it, a speaker is treated that way
        from its first final on)."""
        self.gap_s = gap_s
        self._open: dict[Role, _Open] = {}
        # Speakers whose turns end with a final text.
        self._finals: set[Role] = {"user", "assistant"} if finals else set()

    def piece(self, role: Role, text: str, *, final: bool, now: float) -> list[Utterance]:
        """Feed one transcript piece; returns the utterances it closed."""
        closed: list[Utterance] = []
        other: Role = "assistant" if role == "user" else "user"
        if other in self._open and other not in self._finals and not final and text.strip():
            closed += self._close(other)  # the other speaker took over
        if final:
            self._finals.add(role)
            self._open.pop(role, None)
            if text.strip():
                closed.append(Utterance(role, text.strip()))
            return closed
        current = self._open.get(role)
        if current is None:
            current = self._open[role] = _Open(now)
        current.parts.append(text)
        current.touched = now
        return closed

    def close(self, role: Role) -> list[Utterance]:
        """The speaker is done (e.g. the assistant's reply ended)."""
        return self._close(role)

    def deadline(self) -> float | None:
        """When the oldest utterance that can close for silence does; None if there is none."""
        times = [self._closes_at(o) for r, o in self._open.items() if r not in self._finals]
        return min(times) if times else None

    def due(self, now: float) -> list[Utterance]:
        """Close every utterance (of a speaker without finals) silent for `gap_s`."""
        closed: list[Utterance] = []
        for role, current in list(self._open.items()):
            if role not in self._finals and now >= self._closes_at(current):
                closed += self._close(role)
        return closed

    def flush(self) -> list[Utterance]:
        """The session ended: close whatever is open."""
        closed: list[Utterance] = []
        for role in list(self._open):
            closed += self._close(role)
        return closed

    def _closes_at(self, current: _Open) -> float:
        # The one expression for both: `now - touched >= gap_s` can be False at the very
        # deadline reported (float rounding), and a caller would wait on a past deadline.
        return current.touched + self.gap_s

    def _close(self, role: Role) -> list[Utterance]:
        current = self._open.pop(role, None)
        if current is None:
            return []
        text = "".join(current.parts).strip()
        return [Utterance(role, text)] if text else []
