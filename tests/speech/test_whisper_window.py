"""Whisper on a window fitted to the utterance: the window's size, and the same words as the
30 s window on real speech, with the doubtful cases sent back to faster-whisper's path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from foreman.speech.whisper import WhisperSettings, WhisperTranscriber
from foreman.speech.whisper_window import FULL_FRAMES, MARGIN_FRAMES, MIN_FRAMES, fitted_frames
from foreman.testing.speech import trim_silence, word_error_rate
from foreman.testing.voices import flite_speech, have_flite

RATE = 16_000
needs_flite = pytest.mark.skipif(not have_flite(), reason="flite is not installed")


@given(st.integers(min_value=0, max_value=4 * FULL_FRAMES))
@example(0)
@example(FULL_FRAMES - MARGIN_FRAMES)
@example(FULL_FRAMES - MARGIN_FRAMES + 1)
def test_the_window_holds_the_speech_and_its_margin_or_is_none(content: int) -> None:
    window = fitted_frames(content)
    if content + MARGIN_FRAMES > FULL_FRAMES:
        assert window is None
        return
    assert window is not None
    assert content + MARGIN_FRAMES <= window <= FULL_FRAMES
    assert window >= MIN_FRAMES
    assert window % 100 == 0


def test_a_short_utterance_gets_the_minimum_window() -> None:
    assert fitted_frames(180) == MIN_FRAMES
    assert fitted_frames(900) == 1_300


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[WhisperTranscriber, WhisperTranscriber]:
    cache = tmp_path_factory.mktemp("models")
    fitted = WhisperTranscriber(cache_dir=cache, settings=WhisperSettings(fitted_window=True))
    full = WhisperTranscriber(cache_dir=cache, settings=WhisperSettings(fitted_window=False))
    fitted.load_sync()
    full.load_sync()
    return fitted, full


@needs_flite
@pytest.mark.parametrize(
    ("sentence", "voice"),
    [
        ("Please turn on the kitchen lights.", "slt"),
        ("What time is my meeting with the landlord tomorrow?", "rms"),
        ("Send a text to my sister saying I will be late.", "awb"),
    ],
)
def test_real_speech_reads_the_same_on_a_fitted_window(
    pair: tuple[WhisperTranscriber, WhisperTranscriber], sentence: str, voice: str
) -> None:
    fitted, full = pair
    pcm = trim_silence(flite_speech(sentence, voice, RATE)) + bytes(RATE * 2 // 5)
    before = dict(fitted.windows)
    short, whole = fitted.transcribe_sync(pcm), full.transcribe_sync(pcm)
    assert fitted.windows["fitted"] == before["fitted"] + 1, "the fitted window was not used"
    assert word_error_rate(sentence, short) <= 0.2, short
    assert word_error_rate(sentence, short) <= word_error_rate(sentence, whole) + 0.15


@needs_flite
def test_speech_longer_than_a_fitted_window_takes_the_30_second_one(
    pair: tuple[WhisperTranscriber, WhisperTranscriber],
) -> None:
    fitted, _ = pair
    sentences = [
        "The train to the city leaves every twenty minutes from the second platform.",
        "My sister is coming to visit us next weekend with her two children.",
        "Please remind me to buy bread, milk and eggs on the way home tonight.",
        "The meeting with the landlord moved to Thursday afternoon at three.",
        "We should plant the tomatoes before the end of the month.",
        "The printer on the second floor is jammed again this morning.",
    ]
    pause = bytes(RATE * 2 // 2)
    speech = b"".join(trim_silence(flite_speech(s, "slt", RATE)) + pause for s in sentences)
    while len(speech) / 2 / RATE <= (FULL_FRAMES - MARGIN_FRAMES) / 100:
        speech += speech[: RATE * 2 * 5]
    before = dict(fitted.windows)
    text = fitted.transcribe_sync(speech)
    assert fitted.windows == {"fitted": before["fitted"], "full": before["full"] + 1}
    assert word_error_rate(" ".join(sentences), text) <= 0.3, text


def test_room_noise_alone_reads_as_nothing(
    pair: tuple[WhisperTranscriber, WhisperTranscriber],
) -> None:
    fitted, _ = pair
    noise = np.random.default_rng(7).normal(0, 200, RATE * 2).astype("<i2").tobytes()
    assert fitted.transcribe_sync(noise) == ""
