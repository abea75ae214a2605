"""Speech to text on real synthesized speech with the packaged Whisper base model."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from foreman.exceptions import AudioFormatError
from foreman.speech import WHISPER_BASE, ModelUnavailable, WhisperTranscriber, ensure_bundle
from foreman.testing.speech import speak, word_error_rate
from foreman.testing.timeouts import unit


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> WhisperTranscriber:
    model = WhisperTranscriber(cache_dir=tmp_path_factory.mktemp("models"))
    model.load_sync()
    return model


def test_the_packaged_model_assembles_to_the_recorded_hash(
    transcriber: WhisperTranscriber,
) -> None:
    assert transcriber.model_dir is not None
    assert (transcriber.model_dir / "model.bin").stat().st_size == 145_217_532
    assert transcriber.load_seconds is not None and transcriber.load_seconds > 0
    # Verified once, then trusted from the stamp.
    assert ensure_bundle(WHISPER_BASE, transcriber.model_dir.parent) == transcriber.model_dir


async def test_real_speech_becomes_text_off_the_event_loop(
    transcriber: WhisperTranscriber,
) -> None:
    sentence = "Please turn on the kitchen lights."
    pcm = speak(sentence, 16_000)
    ticks = 0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async with asyncio.timeout(unit(30)), asyncio.TaskGroup() as tg:
        tg.create_task(heartbeat())
        text = await transcriber.transcribe(pcm)
        done.set()
    assert word_error_rate(sentence, text) <= 0.2, text
    # The loop kept turning while the model ran: inference was not on it.
    assert ticks >= 3


def test_hotwords_and_prompt_are_accepted(transcriber: WhisperTranscriber) -> None:
    sentence = "Call Marguerite tomorrow morning."
    text = transcriber.transcribe_sync(
        speak(sentence, 16_000), hotwords="Marguerite", initial_prompt="A note to call someone."
    )
    assert word_error_rate(sentence, text) <= 0.5, text


def test_silence_and_bad_input(transcriber: WhisperTranscriber) -> None:
    assert transcriber.transcribe_sync(b"") == ""
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        transcriber.transcribe_sync(b"\x00\x01\x02")


def test_a_missing_model_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"no Whisper model at .*model\.bin is missing"):
        WhisperTranscriber(tmp_path).load_sync()


def test_loading_twice_from_two_threads_loads_once(transcriber: WhisperTranscriber) -> None:
    model_before = transcriber._model
    threads = [threading.Thread(target=transcriber.load_sync) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert transcriber._model is model_before
