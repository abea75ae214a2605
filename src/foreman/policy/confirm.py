"""Spoken confirmation of a pending action (the owner says yes on the call), pure.

Only the dispatcher calls this, and only for the verified owner on a voice channel. It is
deliberately conservative: anything that hesitates, negates, asks or amends is not a yes.
A hesitation ("wait", "hold on") counts as a no: the owner stopped the action.
"""

from __future__ import annotations

import enum
import re

_WORD = re.compile(r"[a-z']+")

_NO_WORDS = frozenset(
    {
        "no",
        "nope",
        "nah",
        "don't",
        "dont",
        "cancel",
        "stop",
        "wait",
        "not",
        "negative",
        "abort",
        "never",
        "deny",
        "denied",
        "hang",
    }
)
_NO_PHRASES = ("do not", "hold on", "never mind", "nevermind", "not now", "hang on")
_YES_WORDS = frozenset(
    {
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "ok",
        "okay",
        "confirm",
        "confirmed",
        "correct",
        "affirmative",
        "absolutely",
        "approved",
        "approve",
        "definitely",
    }
)
_YES_PHRASES = (
    "go ahead",
    "do it",
    "please do",
    "send it",
    "call them",
    "book it",
    "that's right",
    "that is right",
    "sounds good",
    "go for it",
)
# A yes buried in a long utterance is more likely a new request than consent.
_MAX_YES_WORDS = 8
_AMENDS = frozenset({"but", "change", "instead", "actually", "except"})
# Questions are not consent ("okay, what else?"); transcripts often drop the "?".
_QUESTION_WORDS = frozenset({"what", "when", "where", "who", "why", "how", "which"})
_QUESTION_OPENERS = frozenset({"can", "could", "would", "should", "will", "is", "are", "did"})


class Confirmation(enum.StrEnum):
    YES = "yes"
    NO = "no"
    UNRELATED = "unrelated"


class VoiceConfirmation:
    """`classify(transcript)` -> YES / NO / UNRELATED for one final user transcript."""

    def classify(self, transcript: str) -> Confirmation:
        text = transcript.lower().replace("\u2019", "'")
        words = _WORD.findall(text)
        if not words:
            return Confirmation.UNRELATED
        joined = " ".join(words)
        if any(w in _NO_WORDS for w in words) or any(p in joined for p in _NO_PHRASES):
            return Confirmation.NO
        question = (
            "?" in text or any(w in _QUESTION_WORDS for w in words) or words[0] in _QUESTION_OPENERS
        )
        if question or any(w in _AMENDS for w in words) or len(words) > _MAX_YES_WORDS:
            return Confirmation.UNRELATED
        if any(w in _YES_WORDS for w in words) or any(
            re.search(rf"\b{re.escape(p)}\b", joined) for p in _YES_PHRASES
        ):
            return Confirmation.YES
        return Confirmation.UNRELATED
