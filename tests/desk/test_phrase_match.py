from __future__ import annotations

import pytest

from foreman.audio.phrase_match import PhraseMatcher


@pytest.mark.parametrize(
    "text",
    [
        "Hey Vim",
        "hey, vim!",
        "Hey-Vim.",
        "heyvim",
        "Hay Vim",
        "So, hey Vim, what time is it?",
        "Kavim what time is it?",
        "Listen, KVim read my messages",
        "I think he Vim is a good name.",
    ],
)
def test_the_phrase_however_written(text: str) -> None:
    assert PhraseMatcher("hey vim").find(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Hey Jim",
        "Hey him",
        "Okay Vim",
        "Hey Vin Diesel",
        "vim is an editor",
        "hey",
        "",
        "Hey Tim",
        "Okay so Vim what time is it?",
        "Havimm",
    ],
)
def test_near_misses_are_not_the_phrase(text: str) -> None:
    assert PhraseMatcher("hey vim").find(text) is None


def test_words_after_the_phrase_are_kept() -> None:
    match = PhraseMatcher("hey vim").find("Okay so, hey Vim, open the file.")
    assert match is not None
    assert match.before == "okay so"
    assert match.after == "open the file"
    alone = PhraseMatcher("hey vim").find("Hey Vim.")
    assert alone is not None and alone.after == ""


def test_a_phrase_without_words_is_refused() -> None:
    with pytest.raises(ValueError, match="no words"):
        PhraseMatcher("!!")
