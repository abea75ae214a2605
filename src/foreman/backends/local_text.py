"""Streamed model text cut into pieces worth speaking, decided without I/O.

Speech should start before the model finishes: `SentenceSplitter` is fed text deltas and
hands back each sentence as soon as it is complete (a `.`, `!` or `?` followed by a space,
or a line break). The first piece of a reply may be a clause instead (cut at `,` `;` `:`
once it is long enough), so the first audio comes sooner. `speakable` removes the markdown a
chat-tuned model likes to write and a synthesizer would read out.
"""

from __future__ import annotations

import re

__all__ = ["SentenceSplitter", "speakable"]

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+|\n+")
_CLAUSE_END = re.compile(r"[,;:]\s+")
_MARKUP = re.compile(r"[*_#`>|~]+")
_SPACES = re.compile(r"\s+")


def speakable(text: str) -> str:
    """`text` without markdown symbols and with single spaces."""
    text = _MARKUP.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


class SentenceSplitter:
    """Feed text deltas; get complete pieces back in order; `flush()` for the rest."""

    def __init__(self, first_clause_chars: int = 30) -> None:
        """A first piece may end at a clause boundary once it has `first_clause_chars`."""
        self.first_clause_chars = first_clause_chars
        self._buffer = ""
        self._pieces = 0

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return out
            piece, self._buffer = self._buffer[:cut], self._buffer[cut:]
            if (clean := speakable(piece)) and any(c.isalnum() for c in clean):
                out.append(clean)
                self._pieces += 1

    def flush(self) -> list[str]:
        piece, self._buffer = self._buffer, ""
        clean = speakable(piece)
        if clean and any(c.isalnum() for c in clean):
            self._pieces += 1
            return [clean]
        return []

    def _next_cut(self) -> int | None:
        match = _SENTENCE_END.search(self._buffer)
        if match is not None:
            return match.end()
        if self._pieces == 0:
            for clause in _CLAUSE_END.finditer(self._buffer):
                if clause.start() >= self.first_clause_chars:
                    return clause.end()
        return None
