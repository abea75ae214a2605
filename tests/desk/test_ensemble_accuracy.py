"""The ensemble detector on real synthesised speech (flite), through the sentinel's whole
path: utterances one recogniser alone misses or wrongly wakes on, in the benchmark's voices.
The full measurement over 112 utterances is bench/wake_bench.py (docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util

import pytest

from foreman.desk.ensemble_wake import EnsembleWake
from foreman.desk.recognisers import PocketsphinxGrammar
from foreman.desk.whisper_wake import WhisperHotword
from foreman.testing.voices import have_flite

from .test_wake_accuracy import PHRASE, wakes

pytestmark = [
    pytest.mark.skipif(not have_flite(), reason="flite is not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("faster_whisper") is None, reason="no faster-whisper"
    ),
    pytest.mark.skipif(importlib.util.find_spec("pocketsphinx") is None, reason="no pocketsphinx"),
]

# (voice, text): the phrase where only one of the two hears it on its own (benchmark runs).
ONE_HEARS_IT = [
    ("slt", "hey vim what time is it"),  # pocketsphinx: "okay them what time is it"
    ("awb", "I think hey vim is a good name"),  # Whisper blurs it into the sentence
    ("kal16", "listen, hey vim, read my messages"),
]
# Near misses the ensemble rejects in the benchmark (docs/benchmarks.md), the last three
# since pocketsphinx vetoes a lone phrase from Whisper with a near-miss name anywhere in its
# text, and either vetoes the name run on into "diesel" (before, all three woke it: Whisper
# "Hey Vim" for awb "hey jim" and kal16 "hey him", pocketsphinx "hey vim do so" for rms).
NEAR_MISSES = [
    ("slt", "okay vim"),
    ("slt", "hey jim"),
    ("awb", "hey tim"),
    ("kal16", "okay vim"),
    ("awb", "hey jim"),
    ("kal16", "hey him"),
    ("rms", "hey vin diesel"),
]


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> EnsembleWake:
    from foreman.speech import ModelUnavailable, WhisperSettings, WhisperTranscriber

    transcriber = WhisperTranscriber(
        settings=WhisperSettings(), cache_dir=tmp_path_factory.mktemp("models")
    )
    try:
        transcriber.load_sync()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    return EnsembleWake(PHRASE, WhisperHotword(PHRASE, transcriber), PocketsphinxGrammar(PHRASE))


async def test_the_phrase_one_recogniser_misses_wakes_the_ensemble(
    ensemble: EnsembleWake,
) -> None:
    missed = [(v, t) for v, t in ONE_HEARS_IT if not await wakes(ensemble, t, v)]
    assert missed == []


@pytest.mark.parametrize("voice", ["awb", "kal16"])
async def test_the_phrase_alone_still_wakes_it_in_the_vetoing_voices(
    ensemble: EnsembleWake, voice: str
) -> None:
    assert await wakes(ensemble, "hey vim", voice)


async def test_near_misses_do_not_wake_the_ensemble(ensemble: EnsembleWake) -> None:
    woke = [(v, t) for v, t in NEAR_MISSES if await wakes(ensemble, t, v)]
    assert woke == []


async def test_ordinary_speech_does_not_wake_the_ensemble(ensemble: EnsembleWake) -> None:
    said = ["have them send the file", "what is the weather like today"]
    woke = [text for text in said if await wakes(ensemble, text, "awb")]
    assert woke == []
