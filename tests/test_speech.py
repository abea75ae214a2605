import numpy as np

from foreman.testing.speech import synthesize


def test_espeak_speech_is_real_audio_at_the_requested_rate() -> None:
    pcm = np.frombuffer(synthesize("hello there", 8000), dtype="<i2")
    assert 0.4 < len(pcm) / 8000 < 3.0
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300  # not silence
