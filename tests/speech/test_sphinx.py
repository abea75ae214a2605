"""pocketsphinx as the engine's light speech to text, on real speech from flite's voices
(pocketsphinx cannot read espeak-ng's formant voice)."""

from __future__ import annotations

import importlib.util
import threading

import pytest

from foreman.backends.local_runtime import LocalRuntime
from foreman.config import settings_from_dict
from foreman.exceptions import AudioFormatError, ConfigError
from foreman.speech.packaged import ModelUnavailable
from foreman.speech.sphinx import SphinxTranscriber
from foreman.testing.speech import word_error_rate
from foreman.testing.timeouts import unit
from foreman.testing.voices import flite_speech, have_flite

pytest.importorskip("pocketsphinx")
pytestmark = pytest.mark.skipif(not have_flite(), reason="flite is not installed")

SENTENCES = (
    "What time is it in London right now?",
    "Please send a text to my brother saying I will be late.",
    "Hello, can you hear me?",
)


@pytest.fixture(scope="module")
def transcriber() -> SphinxTranscriber:
    model = SphinxTranscriber()
    model.load_sync()
    return model


@pytest.mark.parametrize("voice", ["slt", "rms"])
def test_flite_speech_is_transcribed_within_a_word_error_bound(
    transcriber: SphinxTranscriber, voice: str
) -> None:
    errors = [
        word_error_rate(s, transcriber.transcribe_sync(flite_speech(s, voice, 16_000)))
        for s in SENTENCES
    ]
    # Measured 0 to 0.09 a sentence on these voices; Whisper does better on real ones.
    assert sum(errors) / len(errors) <= 0.2, errors
    assert max(errors) <= 0.34, errors


def test_the_full_english_model_loads_from_the_wheel(transcriber: SphinxTranscriber) -> None:
    assert transcriber.model_dir is not None
    assert (transcriber.model_dir / "en-us.lm.bin").is_file()
    assert transcriber.load_seconds is not None and transcriber.load_seconds > 0


def test_calls_from_two_threads_take_turns_on_the_one_decoder(
    transcriber: SphinxTranscriber,
) -> None:
    # An utterance lives inside the decoder: interleaved calls would mix their audio.
    first, second = SENTENCES[0], SENTENCES[2]
    audio = {first: flite_speech(first, "slt"), second: flite_speech(second, "rms")}
    heard: dict[str, list[str]] = {first: [], second: []}
    start = threading.Barrier(2)

    def work(sentence: str) -> None:
        start.wait(timeout=unit(30))
        for _ in range(3):
            heard[sentence].append(transcriber.transcribe_sync(audio[sentence]))

    threads = [threading.Thread(target=work, args=(s,)) for s in heard]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=unit(120))
    for sentence, texts in heard.items():
        assert len(texts) == 3
        assert all(word_error_rate(sentence, text) <= 0.34 for text in texts), texts


async def test_the_async_call_and_bad_input(transcriber: SphinxTranscriber) -> None:
    sentence = SENTENCES[2]
    text = await transcriber.transcribe(flite_speech(sentence, "slt"))
    assert word_error_rate(sentence, text) <= 0.34, text
    assert transcriber.transcribe_sync(b"") == ""
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        transcriber.transcribe_sync(b"\x00\x01\x02")


def test_without_pocketsphinx_the_error_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "pocketsphinx" else real(name)
    )
    with pytest.raises(ModelUnavailable) as caught:
        SphinxTranscriber().load_sync()
    assert str(caught.value) == (
        'pocketsphinx is not installed ([local] stt = "pocketsphinx"); install it with: '
        "pip install 'foreman-voice[wake]'"
    )


def test_the_engine_uses_it_when_configured_and_status_names_it() -> None:
    runtime = LocalRuntime(settings_from_dict({"local": {"stt": "pocketsphinx"}}))
    assert isinstance(runtime.transcriber, SphinxTranscriber)
    runtime.transcriber.load_sync()
    stt = runtime.components()["stt"]
    assert stt["name"] == "pocketsphinx (CMU en-us, trigram LM)"
    assert stt["model"].endswith("en-us") and stt["load_s"] > 0
    with pytest.raises(ConfigError, match="stt"):
        settings_from_dict({"local": {"stt": "vosk"}})
