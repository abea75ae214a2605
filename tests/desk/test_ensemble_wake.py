"""The ensemble's decision (pure) and its recogniser's order of work (fakes for the engines:
which one runs, and when, is what is tested here; real speech is in
test_ensemble_accuracy.py)."""

from __future__ import annotations

import pytest

from foreman.audio.phrase_match import PhraseMatcher
from foreman.config import Settings
from foreman.desk.ensemble_wake import (
    EnsembleWake,
    clear_near_miss,
    decide,
    needs_sphinx,
    sphinx_veto,
    whisper_veto,
)

PHRASE = "hey vim"


@pytest.mark.parametrize(
    ("text", "missed"),
    [
        ("Hey Jim, open the file", "hey jim"),
        ("hey him", "hey him"),
        ("Hey Tim!", "hey tim"),
        ("hey vin do so", "hey vin"),
        ("Okay Vim.", "okay vim"),
        ("hay jim", "hay jim"),
    ],
)
def test_clear_near_misses(text: str, missed: str) -> None:
    assert clear_near_miss(text, PHRASE) == missed


@pytest.mark.parametrize(
    "text",
    [
        "Hey Vim",  # the phrase itself
        "hey jim hey vim",  # the phrase is there too
        "Hey, what time is it?",  # a greeting and another word: not clearly a near miss
        "have them send the file",
        "the gym is open",
        "",
    ],
)
def test_not_clear_near_misses(text: str) -> None:
    assert clear_near_miss(text, PHRASE) is None


def test_whisper_vetoes_the_name_run_on_into_another_name() -> None:
    assert whisper_veto("Hey Vim Diesel", PHRASE) is not None
    assert whisper_veto("Hey Vim, open the file", PHRASE) is None
    assert not needs_sphinx("Hey Vim Diesel", PHRASE)
    assert not needs_sphinx("Hey Jim", PHRASE)
    assert needs_sphinx("Hey Vim", PHRASE)  # a hit is confirmed: pocketsphinx may veto it
    assert needs_sphinx("Have them set a timer", PHRASE)  # Whisper blurred something


def test_either_hearing_the_phrase_wakes() -> None:
    by_whisper = decide("Hey Vim, what time is it?", "okay them what time is it", PHRASE)
    assert by_whisper.woke and "whisper" in by_whisper.reason
    by_sphinx = decide("Have them set a timer.", "hey vim set a timer", PHRASE)
    assert by_sphinx.woke and "pocketsphinx" in by_sphinx.reason
    assert PhraseMatcher(PHRASE).find(by_sphinx.text) is not None  # the sentinel will match


def test_a_clear_near_miss_from_the_other_vetoes() -> None:
    vetoed = decide("Hey Vim", "hey jim", PHRASE)  # Whisper's hotword pulled Jim to Vim
    assert not vetoed.woke and "pocketsphinx" in vetoed.reason
    assert decide("Hey Jim", "hey vim", PHRASE).woke is False
    assert decide("Okay Vim", None, PHRASE).woke is False
    diesel = decide("Hey Vim Diesel", None, PHRASE)
    assert not diesel.woke
    assert PhraseMatcher(PHRASE).find(diesel.text) is None  # the sentinel must not match it


def test_pocketsphinx_vetoes_the_name_run_on_into_another_name() -> None:
    """rms "hey vin diesel": Whisper "Haven't you saw?", pocketsphinx (with "diesel" among
    its words) "hey vim diesel"."""
    verdict = decide("Haven't you saw?", "hey vim diesel", PHRASE)
    assert not verdict.woke and "diesel" in verdict.reason
    assert PhraseMatcher(PHRASE).find(verdict.text) is None
    assert decide("Haven't you saw?", "hey vim do so", PHRASE).woke  # no run-on: it wakes


@pytest.mark.parametrize("sphinx", ["a jim", "there him", "so tim up"])
def test_a_near_miss_name_anywhere_vetoes_whispers_lone_phrase(sphinx: str) -> None:
    """awb "hey jim" and kal16 "hey him": Whisper's hotword wrote "Hey Vim"."""
    assert sphinx_veto(sphinx, "Hey Vim", PHRASE) is not None
    assert not decide("Hey Vim", sphinx, PHRASE).woke
    assert not decide("Hey Vim.", sphinx, PHRASE).woke


@pytest.mark.parametrize(
    ("whisper", "sphinx"),
    [
        # Longer segments: pocketsphinx writes "him" and "jim" wherever the phrase was said.
        ("Listen, KVim read my messages", "play say and play then then my now us a jim is"),
        ("I think he Vim is a good name.", "i to in play the him his are get play him"),
        ("Hey Vim", "okay them"),  # not one letter away from the name
        ("Hey Vim", "a jim hey vim"),  # pocketsphinx heard the phrase too
    ],
)
def test_a_near_miss_name_without_greeting_leaves_other_hits(whisper: str, sphinx: str) -> None:
    assert sphinx_veto(sphinx, whisper, PHRASE) is None
    assert decide(whisper, sphinx, PHRASE).woke


def test_neither_hearing_it_does_not_wake() -> None:
    verdict = decide("What is the weather like today?", "what is the weather today", PHRASE)
    assert not verdict.woke
    assert verdict.text == "What is the weather like today?"


class _Fake:
    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0
        self.closed = False

    async def hear(self, pcm16: bytes, phrase: str) -> str:
        self.calls += 1
        return self.text

    async def aclose(self) -> None:
        self.closed = True


async def test_pocketsphinx_runs_only_when_whisper_did_not_decide() -> None:
    sphinx = _Fake("hey vim")
    decided = EnsembleWake(PHRASE, _Fake("Hey Jim"), sphinx)
    assert await decided.hear(b"\x00\x01" * 160, PHRASE) == "Hey Jim"
    assert sphinx.calls == 0 and decided.sphinx_runs == 0

    blurred = EnsembleWake(PHRASE, _Fake("Have them set a timer"), sphinx)
    assert await blurred.hear(b"\x00\x01" * 160, PHRASE) == "hey vim"
    assert sphinx.calls == 1 and blurred.last is not None and blurred.last.woke
    await blurred.aclose()
    assert sphinx.closed


def test_the_ensemble_is_a_detector_choice() -> None:
    settings = Settings.model_validate({"voice": {"wake_detector": "ensemble"}})
    assert settings.voice.wake_detector == "ensemble"


@pytest.mark.parametrize("choice", ["ensemble", "auto"])
def test_build_recogniser_makes_the_ensemble(choice: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto` without a key is the ensemble when both engines are installed."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("pocketsphinx")
    from foreman.desk.recognisers import build_recogniser

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = Settings.model_validate({"voice": {"wake_detector": choice}})
    assert not settings.realtime.api_key.get_secret_value()
    recogniser = build_recogniser(settings)
    assert isinstance(recogniser, EnsembleWake)
    assert (recogniser.whisper.name, recogniser.sphinx.name) == ("whisper", "pocketsphinx")


def test_auto_falls_back_to_whisper_without_pocketsphinx(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faster_whisper")
    import importlib.util

    from foreman.desk import recognisers

    real_find_spec = importlib.util.find_spec

    def without_pocketsphinx(name: str, *args: object) -> object:
        return None if name == "pocketsphinx" else real_find_spec(name)

    monkeypatch.setattr(recognisers.importlib.util, "find_spec", without_pocketsphinx)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    auto = recognisers.build_recogniser(Settings.model_validate({"voice": {}}))
    assert auto.name == "whisper"
    ensemble = Settings.model_validate({"voice": {"wake_detector": "ensemble"}})
    with pytest.raises(recognisers.RecogniserUnavailable, match="pocketsphinx"):
        recognisers.build_recogniser(ensemble)
