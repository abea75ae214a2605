"""Tolerant matching of a wake phrase in a recogniser's text.

Recognisers write the same sounds in several ways: "Hey Vim!", "hey, vim", "Hey-Vim",
"heyvim", "Hay Vim". `PhraseMatcher` accepts those and nothing looser: the key word (the
phrase's last word, the name) must be spelled exactly, because its near misses are other
words a person says ("hey Jim", "hey him", "hey Tim"); only a leading greeting may take the
other spellings of the same sound. "okay vim" is a different greeting, not a spelling of "hey".

Pure and cheap: called once per recognised speech segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["PhraseMatch", "PhraseMatcher", "words"]

# Spellings of one greeting's sound that recognisers write; a greeting not listed here
# matches only itself.
_GREETING_SPELLINGS: Final[dict[str, frozenset[str]]] = {
    "hey": frozenset({"hey", "hay", "hei", "heya"}),
    "hi": frozenset({"hi", "hy", "hai"}),
    "ok": frozenset({"ok", "okay"}),
    "okay": frozenset({"ok", "okay"}),
}
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case words without punctuation ("Hey, Vim's" → ["hey", "vim", "s"])."""
    return _WORD.findall(text.lower().replace("'", " "))


@dataclass(frozen=True, slots=True)
class PhraseMatch:
    """Where the phrase was found: `before` and `after` are the words around it."""

    before: str
    after: str


class PhraseMatcher:
    """`find(text)` returns a `PhraseMatch` when `text` contains the phrase, else None."""

    def __init__(self, phrase: str) -> None:
        self.phrase = phrase
        self._words = words(phrase)
        if not self._words:
            raise ValueError(f"the wake phrase {phrase!r} has no words")
        self._choices = [_GREETING_SPELLINGS.get(w, frozenset({w})) for w in self._words]
        self._joined = "".join(self._words)

    @property
    def first_word_spellings(self) -> frozenset[str]:
        return self._choices[0]

    def find(self, text: str) -> PhraseMatch | None:
        heard = words(text)
        n = len(self._words)
        for i in range(len(heard)):
            if heard[i] == self._joined and n > 1:  # "heyvim"
                return PhraseMatch(" ".join(heard[:i]), " ".join(heard[i + 1 :]))
            window = heard[i : i + n]
            if len(window) == n and all(w in c for w, c in zip(window, self._choices, strict=True)):
                return PhraseMatch(" ".join(heard[:i]), " ".join(heard[i + n :]))
        return None
