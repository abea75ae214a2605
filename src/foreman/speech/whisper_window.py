"""Whisper on a window fitted to the utterance instead of its fixed 30 seconds.

faster-whisper pads every call to Whisper's 30 s window (3,000 mel frames), so a two-second
question costs the encoder as much as half a minute of speech. CTranslate2's Whisper takes a
shorter window (`features` of any length up to 3,000 frames:
https://opennmt.net/CTranslate2/python/ctranslate2.models.Whisper.html), as whisper.cpp's
`audio_ctx` option does: the utterance plus some silence after it, never under
`MIN_FRAMES`. On short utterances this costs about a third of the CPU with no worse a word
error rate (`docs/benchmarks.md`, "Speech to text on a fitted window").

Whatever looks doubtful goes back to faster-whisper's own path, which has the 30 s window and
its temperature fallback: an utterance too long for a fitted window, an answer that repeats
itself, or one the decoder is unsure of. A window that holds only silence by the model's own
judgement gives "" as faster-whisper would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FULL_FRAMES", "FittedWhisper", "fitted_frames"]

FULL_FRAMES = 3_000  # Whisper's 30 s window, 10 ms per frame
MIN_FRAMES = 1_000  # shorter windows measured worse (more words misheard)
MARGIN_FRAMES = 400  # silence after the speech: the decoder sees where it ends
ROUND_FRAMES = 100  # a handful of window sizes, not one per utterance length
# faster-whisper's defaults for the same decisions (TranscriptionOptions)
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4


def fitted_frames(content_frames: int) -> int | None:
    """The window for an utterance of `content_frames` mel frames, or None when it needs
    Whisper's whole 30 s window."""
    wanted = content_frames + MARGIN_FRAMES
    if wanted > FULL_FRAMES:
        return None
    return max(MIN_FRAMES, math.ceil(wanted / ROUND_FRAMES) * ROUND_FRAMES)


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    no_speech_prob: float
    avg_logprob: float


class FittedWhisper:
    """The fitted-window path over a loaded faster-whisper `WhisperModel` (its CTranslate2
    model, feature extractor and tokenizer). Thread-safe: nothing here changes shared state."""

    def __init__(self, model: Any, language: str) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

        self._model = model
        self._tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        self._suppressed = get_suppressed_tokens(self._tokenizer, [-1])
        self._compression_ratio: Callable[[str], float] = get_compression_ratio

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        beam_size: int,
        hotwords: str | None,
        initial_prompt: str | None,
    ) -> str | None:
        """The text of `audio` (float32 at 16 kHz), or None: use faster-whisper's path."""
        import ctranslate2

        features = self._model.feature_extractor(audio)
        content = features.shape[-1] - 1  # the extractor's padding adds one frame
        window = fitted_frames(content)
        if window is None:
            return None
        padded = np.zeros((1, features.shape[0], window), dtype=np.float32)
        padded[0, :, : min(content, window)] = features[:, : min(content, window)]
        decoded = self._decode(
            ctranslate2.StorageView.from_array(padded), beam_size, hotwords, initial_prompt
        )
        if decoded.no_speech_prob > NO_SPEECH_THRESHOLD and (
            decoded.avg_logprob <= LOG_PROB_THRESHOLD
        ):
            return ""
        if (
            decoded.avg_logprob < LOG_PROB_THRESHOLD
            or self._compression_ratio(decoded.text) > COMPRESSION_RATIO_THRESHOLD
        ):
            return None
        return decoded.text

    def _decode(
        self, features: Any, beam_size: int, hotwords: str | None, initial_prompt: str | None
    ) -> _Decoded:
        previous = self._tokenizer.encode(" " + initial_prompt.strip()) if initial_prompt else []
        prompt = self._model.get_prompt(
            self._tokenizer, previous, without_timestamps=True, hotwords=hotwords
        )
        result = self._model.model.generate(
            features,
            [prompt],
            beam_size=beam_size,
            max_length=self._model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed,
        )[0]
        tokens = result.sequences_ids[0]
        # The score is the cumulative log-probability over the tokens (length penalty 1).
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        return _Decoded(self._tokenizer.decode(tokens).strip(), result.no_speech_prob, avg_logprob)
