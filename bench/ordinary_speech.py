"""Ordinary continuous English speech for the wake benchmark's false-trigger measure.

Sentences written for this benchmark (no text is fetched): a fixed set of everyday
sentences, and more made from parts (who, what they do, when), drawn by a seeded generator so
every run speaks the same words. They include words a person says near the wake phrase
without meaning it: "hey" to other names, "okay", "have him", "them", "win", "him", "Kim".
No near miss of the phrase itself ("hey jim", "okay vim") is in it: those are measured
separately.

`speech_stream` speaks them in paragraphs, each by one flite voice, with the pauses of
continuous speech between sentences (some shorter than the VAD's end of speech, so a segment
can span two sentences) and quiet room noise, not digital silence, in the gaps.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from foreman.testing.voices import flite_speech

__all__ = ["Piece", "sentences", "speech_stream"]

FIXED = [
    "good morning, did you sleep well last night",
    "hey Sarah, can you pass me the salt please",
    "okay, I will call him back after lunch",
    "have him send me the report before five",
    "tell them the meeting moved to thursday",
    "I think we should leave a little earlier today",
    "the kids want pancakes for breakfast again",
    "hey Tom, are you coming to the game tonight",
    "did you see the email from the landlord",
    "we could win this if we keep our heads down",
    "the printer on the second floor is jammed again",
    "hey there, long time no see",
    "I asked Kim to pick up the dry cleaning",
    "can you remind me to water the plants",
    "okay so the plan is to meet at the station at noon",
    "my editor crashed and I lost an hour of work",
    "have a look at the numbers and tell me what you think",
    "he said the shop closes early on sundays",
    "hey, what time does the film start",
    "the weather is supposed to clear up by the afternoon",
    "let me know when you are ready to go",
    "I need to renew my passport before the trip",
    "we are out of coffee, can you add it to the list",
    "hey Mike, nice to meet you",
    "they have been working on that bridge for years",
    "the dog needs a walk before it gets dark",
    "okay, that sounds fine to me",
    "give him a call and see if he is free",
    "I will have the soup and a green salad",
    "the train to the city leaves every twenty minutes",
    "have them wait in the lobby until I get there",
    "it was a long week and I am glad it is over",
    "hey Ben, did you fix the bike",
    "my sister is visiting us next month",
    "please turn the music down a little",
    "the vending machine ate my coins again",
    "we should paint the kitchen a lighter colour",
    "okay everyone, let us get started",
    "I have never seen so much snow in april",
    "hey Anna, where did you park the car",
]

_WHO = [
    "my brother",
    "the neighbour",
    "our manager",
    "the new intern",
    "my friend from school",
    "the teacher",
    "the man at the counter",
    "my grandmother",
    "the whole team",
    "the doctor",
    "Kim",
    "Tim's sister",
    "the delivery driver",
    "everyone in the office",
    "the landlord",
    "my cousin",
    "the children",
    "our guests",
    "the bus driver",
    "the cat",
]
_DOES = [
    "forgot to bring the keys",
    "is painting the fence",
    "wants to move to the coast",
    "fixed the leaking tap",
    "asked about the invoice",
    "has a cold",
    "made a lovely apple pie",
    "is learning to play the piano",
    "missed the last bus home",
    "found a wallet in the park",
    "called about the broken window",
    "bought a new bicycle",
    "is reading a book about the ocean",
    "said the parcel never arrived",
    "planted tomatoes in the garden",
    "will have the results soon",
    "lost the match by one point",
    "is cooking dinner for all of us",
    "wrote a long letter to the council",
    "has been waiting for an hour",
    "wants to see him about the lease",
    "told them the story again",
    "is finally on holiday",
    "cleaned the windows",
    "left the lights on all night",
]
_WHEN = [
    "yesterday",
    "this morning",
    "last week",
    "on monday",
    "every evening",
    "before the storm",
    "after work",
    "at the weekend",
    "again",
    "for the first time",
    "",
    "",
]
_ASIDES = [
    "I think",
    "apparently",
    "as far as I know",
    "believe it or not",
    "you know",
    "honestly",
    "",
    "",
    "",
]


@dataclass(frozen=True, slots=True)
class Piece:
    """A sentence spoken by `voice` and its PCM16 (the pause after it included)."""

    text: str
    voice: str
    pcm16: bytes
    speech_s: float  # the sentence alone, without the pause


def sentences(seed: int = 0) -> Iterator[str]:
    """The fixed sentences, then made ones without end (the same for the same seed)."""
    rng = random.Random(seed)
    yield from FIXED
    while True:
        aside = rng.choice(_ASIDES)
        core = f"{rng.choice(_WHO)} {rng.choice(_DOES)} {rng.choice(_WHEN)}".strip()
        yield f"{aside}, {core}" if aside else core


def speech_stream(voices: list[str], seconds: float, rate: int, seed: int = 0) -> Iterator[Piece]:
    """About `seconds` of speech: paragraphs of 3 to 7 sentences, each paragraph in the next
    voice; 0.1-0.7 s between sentences, 1-2 s between paragraphs."""
    rng = random.Random(seed + 1)
    noise = np.random.default_rng(seed)
    said = 0.0
    texts = sentences(seed)
    turn = 0
    while said < seconds:
        voice = voices[turn % len(voices)]
        turn += 1
        count = rng.randint(3, 7)
        for i in range(count):
            text = next(texts)
            speech = flite_speech(text, voice, rate)
            pause = rng.uniform(1.0, 2.0) if i == count - 1 else rng.uniform(0.1, 0.7)
            gap = noise.normal(0, 12, int(pause * rate)).astype("<i2").tobytes()
            speech_s = len(speech) / 2 / rate
            said += speech_s
            yield Piece(text, voice, speech + gap, speech_s)
            if said >= seconds:
                return
