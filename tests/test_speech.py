import shutil
from importlib import resources

import numpy as np
import pytest

from foreman.audio.wav import read_wav
from foreman.testing import speech
from foreman.testing.speech import synthesize


def test_espeak_speech_is_real_audio_at_the_requested_rate() -> None:
    pcm = np.frombuffer(synthesize("hello there", 8000), dtype="<i2")
    assert 0.4 < len(pcm) / 8000 < 3.0
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300  # not silence


def rms(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(pcm, dtype="<i2").astype(np.float64) ** 2)))


def only(monkeypatch: pytest.MonkeyPatch, *installed: str) -> None:
    """Pretend that only these programs are installed."""
    real = shutil.which
    monkeypatch.setattr(
        speech.shutil, "which", lambda name: real(name) if name in installed else None
    )


def test_flite_speaks_when_espeak_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    only(monkeypatch, "flite")
    pcm = speech.speak("hello there", 16000)
    assert 0.4 < len(pcm) / 2 / 16000 < 3.0 and rms(pcm) > 300


def test_without_a_synthesizer_the_caller_says_the_shipped_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only(monkeypatch)
    with pytest.raises(speech.SpeechUnavailable, match="neither espeak-ng nor flite"):
        speech.speak("hello", 8000)
    shipped = resources.files("foreman.testing").joinpath(speech.CALLER_SENTENCE_WAV)
    pcm, rate = read_wav(shipped.read_bytes())
    assert rate == 8000 and 1.0 < len(pcm) / 2 / rate < 6.0 and rms(pcm) > 300
    assert speech.caller_sentence(8000) == pcm
    assert abs(len(speech.caller_sentence(16000)) - 2 * len(pcm)) <= 4


def test_with_a_synthesizer_the_caller_sentence_is_synthesized() -> None:
    assert speech.caller_sentence(8000) == speech.synthesize(speech.CALLER_SENTENCE, 8000)
