"""The wake phrase through two recognisers whose mistakes differ: Whisper and pocketsphinx.

On the benchmark's voices (docs/benchmarks.md) Whisper with the phrase as hotword misses the
phrase blurred into a run-on sentence, and pocketsphinx in grammar mode misses it in one
voice; their misses do not overlap. Each also wakes on near misses the other hears for what
they are: Whisper writes "Hey Vim" for some "hey jim", pocketsphinx hears "hey vim do so" in
"hey vin diesel" (before "diesel" was among its words), which Whisper writes "Hey Vim
Diesel". So the ensemble wakes when either
hears the phrase, unless the other clearly heard a near miss (a veto):

* either vetoes with a clear near miss in its text, not the phrase: the greeting followed
  by a word one letter away from the name ("hey jim", "hey him", "hey tim", "hey vin"), or
  the name after a different greeting ("okay vim");
* either vetoes the phrase run on into a word that makes it another name ("Hey Vim
  Diesel"; pocketsphinx's grammar has "diesel" among its words for this);
* when Whisper heard the phrase and nothing else, pocketsphinx vetoes with a word one letter
  away from the name anywhere in its text ("a jim", "there him"): on a lone name the
  hotword bias pulls "Jim" and "him" to "Vim", and pocketsphinx's reading is the better
  evidence. In a longer segment its texts are full of "him" and "then" wherever the phrase
  was said, so there it needs the greeting before the name like any clear near miss.

The clear-near-miss veto is narrower than `whisper_wake.near_miss` (the greeting followed
by any other word): Whisper writes "Hey, what time is it?" for some "hey vim what time is
it", and that must leave pocketsphinx its say. Measured in docs/benchmarks.md (bench/wake_bench.py).

Whisper runs first; when its text already decides (a veto), pocketsphinx is not run.
Pocketsphinx costs about a tenth of Whisper's CPU, so the ensemble costs about 1.1 times
Whisper alone. Both run in worker threads inside their recognisers, one after the other,
never on the event loop.

`decide` is the pure decision; `EnsembleWake` is the recogniser the sentinel calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Protocol

from foreman.audio.phrase_match import PhraseMatcher, words

__all__ = [
    "EnsembleVerdict",
    "EnsembleWake",
    "clear_near_miss",
    "decide",
    "needs_sphinx",
    "sphinx_veto",
    "whisper_veto",
]

# Words that turn the name into someone else's when they follow it ("vin diesel"). Whisper's
# hotword bias writes "Vin" as "Vim"; the word after it gives the near miss away.
NAME_CONTINUATIONS: Final = frozenset({"diesel"})
_OTHER_GREETINGS: Final = frozenset({"ok", "okay", "hi", "hello", "say"})


class _Hears(Protocol):
    async def hear(self, pcm16: bytes, phrase: str) -> str: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EnsembleVerdict:
    """`woke`: the phrase was heard. `text`: what the sentinel is given (it contains the
    phrase exactly when `woke`). `reason`: which recogniser decided and why, for logs."""

    woke: bool
    text: str
    reason: str


def _one_letter_away(word: str, name: str) -> bool:
    return (
        len(word) == len(name)
        and word != name
        and sum(a != b for a, b in zip(word, name, strict=True)) == 1
    )


def clear_near_miss(text: str, phrase: str) -> str | None:
    """The near miss of the phrase in `text` ("hey jim", "okay vim") when the phrase itself
    is not there, else None."""
    key = words(phrase)
    matcher = PhraseMatcher(phrase)
    if len(key) < 2 or matcher.find(text) is not None:
        return None
    name, firsts = key[-1], matcher.first_word_spellings
    heard = words(text)
    for before, word in pairwise(heard):
        if before in firsts and _one_letter_away(word, name):
            return f"{before} {word}"
        if word == name and before in _OTHER_GREETINGS and before not in firsts:
            return f"{before} {word}"
    return None


def _veto(recogniser: str, text: str, phrase: str) -> str | None:
    missed = clear_near_miss(text, phrase)
    if missed is not None:
        return f"{recogniser} heard {missed!r}"
    found = PhraseMatcher(phrase).find(text)
    following = words(found.after) if found is not None else []
    if following and following[0] in NAME_CONTINUATIONS:
        return f"{recogniser} heard the name run on into {following[0]!r}"
    return None


def whisper_veto(text: str, phrase: str) -> str | None:
    """Why Whisper's `text` rules the phrase out, or None."""
    return _veto("whisper", text, phrase)


def sphinx_veto(sphinx_text: str, whisper_text: str, phrase: str) -> str | None:
    """Why pocketsphinx's text rules out the phrase Whisper's text may hold, or None."""
    veto = _veto("pocketsphinx", sphinx_text, phrase)
    if veto is not None:
        return veto
    matcher = PhraseMatcher(phrase)
    said = matcher.find(whisper_text)
    if said is None or said.before or said.after or matcher.find(sphinx_text) is not None:
        return None
    name = words(phrase)[-1]
    other = next((w for w in words(sphinx_text) if _one_letter_away(w, name)), None)
    if other is None:
        return None
    return f"pocketsphinx heard {other!r} where Whisper heard the phrase alone"


def _rejected(reason: str, evidence: str, matcher: PhraseMatcher) -> EnsembleVerdict:
    # The sentinel matches the text it is given: a vetoed text may still contain the phrase
    # ("Hey Vim Diesel"), so it is handed over only when it does not.
    text = evidence if matcher.find(evidence) is None else ""
    return EnsembleVerdict(False, text, reason)


def needs_sphinx(whisper_text: str, phrase: str) -> bool:
    """False when Whisper's text already decides (it vetoes): pocketsphinx is not run."""
    return whisper_veto(whisper_text, phrase) is None


def decide(whisper_text: str, sphinx_text: str | None, phrase: str) -> EnsembleVerdict:
    """Either recogniser hearing the phrase wakes, unless the other vetoes it.
    `sphinx_text` None: pocketsphinx was not run (Whisper's text decided)."""
    matcher = PhraseMatcher(phrase)
    veto = whisper_veto(whisper_text, phrase)
    if veto is not None:
        return _rejected(veto, whisper_text, matcher)
    sphinx = sphinx_text or ""
    by_whisper = matcher.find(whisper_text) is not None
    if not by_whisper and matcher.find(sphinx) is None:
        return _rejected("neither heard the phrase", whisper_text, matcher)
    veto = sphinx_veto(sphinx, whisper_text, phrase)
    if veto is not None:
        return _rejected(veto, sphinx, matcher)
    if by_whisper:
        return EnsembleVerdict(True, whisper_text, "whisper heard the phrase")
    return EnsembleVerdict(True, sphinx, "pocketsphinx heard the phrase")


class EnsembleWake:
    """The sentinel's recogniser: Whisper, then pocketsphinx unless Whisper decided."""

    name = "ensemble"

    def __init__(self, phrase: str, whisper: _Hears, sphinx: _Hears) -> None:
        self.phrase = phrase
        self.whisper = whisper
        self.sphinx = sphinx
        self.sphinx_runs = 0
        self.last: EnsembleVerdict | None = None

    async def hear(self, pcm16: bytes, phrase: str) -> str:
        whisper_text = await self.whisper.hear(pcm16, phrase)
        sphinx_text: str | None = None
        if needs_sphinx(whisper_text, phrase):
            self.sphinx_runs += 1
            sphinx_text = await self.sphinx.hear(pcm16, phrase)
        self.last = decide(whisper_text, sphinx_text, phrase)
        return self.last.text

    async def aclose(self) -> None:
        await self.whisper.aclose()
        await self.sphinx.aclose()
