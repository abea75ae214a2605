"""Spoken yes / no classification (conservative: doubt is never a yes)."""

from __future__ import annotations

import pytest

from foreman.policy import Confirmation, VoiceConfirmation

C = VoiceConfirmation()


@pytest.mark.parametrize(
    "text",
    [
        "Yes.",
        "yes please",
        "Go ahead.",
        "do it",
        "Confirm",
        "yeah, send it",
        "Okay, sure!",
        "Yep, that's right",
        "Absolutely, go for it",
    ],
)
def test_yes(text: str) -> None:
    assert C.classify(text) is Confirmation.YES


@pytest.mark.parametrize(
    "text",
    [
        "No.",
        "no thanks",
        "Don't.",
        "don’t send it",
        "cancel",
        "wait",
        "hold on",
        "yes, wait",
        "Stop!",
        "do not do that",
        "never mind",
        "not yet",
    ],
)
def test_no(text: str) -> None:
    assert C.classify(text) is Confirmation.NO


@pytest.mark.parametrize(
    "text",
    [
        "",
        "...",
        "what's the weather",
        "yes?",
        "yes but make it five o'clock",
        "Yes I was thinking we could also send one to my brother and my mother later today",
        "hmm",
        "text my wife",
    ],
)
def test_unrelated(text: str) -> None:
    assert C.classify(text) is Confirmation.UNRELATED
