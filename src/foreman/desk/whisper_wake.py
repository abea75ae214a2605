"""The wake phrase through Whisper (faster-whisper, the packaged base model) with a hotword.

Whisper base with the phrase as a hotword hears "hey vim" said alone every time on the test
voices, and writes most near misses as they are ("Hey Jim", "Okay Vim"). Inside a longer
sentence it can blur the phrase into neighbouring words ("Kave them set a timer"). So:

1. the whole segment is transcribed with the hotword; the phrase in the text is a hit;
2. when it is not, and the text does not show a near miss of the phrase (its greeting
   followed by another word, "Hey Jim", or its name after another greeting, "Okay Vim"),
   the segment's first `LEADING_S` seconds are transcribed alone: a phrase said first,
   run into the words after it, is heard there.

A near miss seen in the whole text vetoes the second look: short windows bias towards the
hotword, and the whole segment's reading is the better evidence. Measured in
docs/benchmarks.md (bench/wake_bench.py).
"""

from __future__ import annotations

from typing import Final

from foreman.audio.phrase_match import PhraseMatcher, words
from foreman.speech import WhisperSettings, WhisperTranscriber

__all__ = ["LEADING_S", "WhisperHotword", "near_miss"]

LEADING_S: Final = 1.2
_RATE: Final = 16000
_GREETINGS: Final = frozenset({"hey", "hay", "hei", "hi", "ok", "okay", "hello", "say"})


def near_miss(text: str, phrase: str) -> bool:
    """Does `text` show something like the phrase that is not it ("Hey Jim", "Okay Vim")?"""
    key = words(phrase)
    if len(key) < 2:
        return False
    last = key[-1]
    heard = words(text)
    firsts = PhraseMatcher(phrase).first_word_spellings
    for i, w in enumerate(heard):
        nxt = heard[i + 1] if i + 1 < len(heard) else None
        if w in firsts and nxt is not None and nxt != last:
            return True
        if w == last and i > 0 and heard[i - 1] not in firsts and heard[i - 1] in _GREETINGS:
            return True
    return False


class WhisperHotword:
    name = "whisper"

    def __init__(self, phrase: str, transcriber: WhisperTranscriber | None = None) -> None:
        self.phrase = phrase
        self.hotword = " ".join(w.capitalize() for w in words(phrase))
        self.matcher = PhraseMatcher(phrase)
        self.transcriber = transcriber or WhisperTranscriber(settings=WhisperSettings())
        self.second_looks = 0

    async def load(self) -> None:
        await self.transcriber.load()

    async def hear(self, pcm16: bytes, phrase: str) -> str:
        text = await self.transcriber.transcribe(pcm16, hotwords=self.hotword)
        if self.matcher.find(text) is not None or near_miss(text, self.phrase):
            return text
        leading = int(LEADING_S * _RATE) * 2
        if len(pcm16) <= leading + int(0.3 * _RATE) * 2:  # hardly longer than the window
            return text
        self.second_looks += 1
        first = await self.transcriber.transcribe(pcm16[:leading], hotwords=self.hotword)
        return first if self.matcher.find(first) is not None else text

    async def aclose(self) -> None:
        return None
