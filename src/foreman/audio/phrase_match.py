"""Tolerant matching of a wake phrase in a recogniser's text.

Recognisers write the same sounds in several ways: "Hey Vim!", "hey, vim", "Hey-Vim",
"heyvim", "Hay Vim", "He Vim", and with the greeting run into the name, "Kavim", "KVim",
"Havim". `PhraseMatcher` accepts those and nothing looser: the key word (the phrase's last
word, the name) must be spelled exactly, because its near misses are other words a person
says ("hey Jim", "hey him", "hey Tim"); only a leading greeting may take the other spellings
of the same sound, or be glued to the name as a fragment of at most `GLUED_PREFIX` letters
(no English word is a short fragment followed by "vim"). "okay vim" is a different greeting,
not a spelling of "hey".

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
    "hey": frozenset({"hey", "hay", "hei", "heya", "he"}),
    "hi": frozenset({"hi", "hy", "hai"}),
    "ok": frozenset({"ok", "okay"}),
    "okay": frozenset({"ok", "okay"}),
}
_WORD = re.compile(r"[a-z0-9]+")
GLUED_PREFIX: Final = 4  # "kavim": a greeting fragment run into the name


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
        # A greeting glued to the name only counts for a two-word phrase with a greeting.
        self._glued = len(self._words) == 2 and self._words[0] in _GREETING_SPELLINGS

    def _glued_name(self, word: str) -> bool:
        key = self._words[-1]
        prefix = word[: -len(key)] if word.endswith(key) else None
        return (
            self._glued
            and prefix is not None
            and 1 <= len(prefix) <= GLUED_PREFIX
            and prefix.isalpha()
        )

    @property
    def first_word_spellings(self) -> frozenset[str]:
        return self._choices[0]

    def find(self, text: str) -> PhraseMatch | None:
        heard = words(text)
        n = len(self._words)
        for i in range(len(heard)):
            if (heard[i] == self._joined and n > 1) or self._glued_name(heard[i]):  # "heyvim"
                return PhraseMatch(" ".join(heard[:i]), " ".join(heard[i + 1 :]))
            window = heard[i : i + n]
            if len(window) == n and all(w in c for w, c in zip(window, self._choices, strict=True)):
                return PhraseMatch(" ".join(heard[:i]), " ".join(heard[i + n :]))
        return None
