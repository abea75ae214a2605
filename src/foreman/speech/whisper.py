"""Speech to text with faster-whisper on the CPU, from a local model directory only.

`WhisperTranscriber` takes PCM16 little-endian mono at 16 kHz and returns the text. The model
loads lazily (or with `load()`), int8 on the CPU; inference and loading run in a worker thread
(`asyncio.to_thread`), never on the event loop. `HF_HUB_OFFLINE=1` is set before
faster-whisper is imported, so a wrong path fails instead of reaching for the model hub.

Whisper pads every call to a 30 s window, so a call costs about the same for a short phrase as
for a long one (about 0.3-0.7 s wall on a 2-core machine with the base model): transcribe
whole utterances, not frames. With `fitted_window` (the offline engine's default, not the wake
sentinel's: its near-miss decisions were tuned on the 30 s window) a short utterance is
decoded on a window fitted to it instead (`whisper_window`), for about a third of the cost.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from foreman.exceptions import AudioFormatError
from foreman.speech.catalog import OFFLINE_INSTALL_HINT, WHISPER_BASE
from foreman.speech.packaged import ModelUnavailable, ensure_bundle
from foreman.speech.whisper_window import FittedWhisper

__all__ = ["SAMPLE_RATE", "WhisperSettings", "WhisperTranscriber"]

SAMPLE_RATE = 16_000


@dataclass(frozen=True, slots=True)
class WhisperSettings:
    """How to run the model. `hotwords` and `initial_prompt` bias the decoder towards words the
    caller is likely to say (names, a wake phrase); `beam_size` 1 is greedy and fastest;
    `fitted_window` decodes a short utterance on a window fitted to it, not all 30 s."""

    cpu_threads: int = 2
    language: str = "en"
    beam_size: int = 1
    hotwords: str | None = None
    initial_prompt: str | None = None
    fitted_window: bool = False


def _whisper_model_class() -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise ModelUnavailable(
            f"faster-whisper is not installed (speech to text); install it with: "
            f"{OFFLINE_INSTALL_HINT}"
        ) from exc
    return WhisperModel


class WhisperTranscriber:
    """One loaded Whisper model; safe to share between calls (the runtime serializes them)."""

    def __init__(
        self,
        model_dir: Path | None = None,
        settings: WhisperSettings | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        """`model_dir` is a faster-whisper model directory; None means the packaged Whisper
        base model, assembled and verified under `cache_dir` (default: the user's cache)."""
        self._model_dir = model_dir
        self._cache_dir = cache_dir
        self.settings = settings or WhisperSettings()
        self._model: Any = None
        self._fitted: FittedWhisper | None = None
        # Utterances decoded on a fitted window and on the whole 30 s one (approximate
        # under threads: for status and tests, not accounting).
        self.windows = {"fitted": 0, "full": 0}
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    @property
    def model_dir(self) -> Path | None:
        return self._model_dir

    def load_sync(self) -> None:
        """Find, verify and load the model (blocking; idempotent). Raises ModelUnavailable or
        ModelVerificationError with a one-line fix."""
        import time

        with self._lock:
            if self._model is not None:
                return
            started = time.monotonic()
            model_class = _whisper_model_class()
            if self._model_dir is None:
                self._model_dir = ensure_bundle(WHISPER_BASE, self._cache_dir)
            elif not (self._model_dir / "model.bin").is_file():
                raise ModelUnavailable(
                    f"no Whisper model at {self._model_dir} (model.bin is missing)"
                )
            self._model = model_class(
                str(self._model_dir),
                device="cpu",
                compute_type="int8",
                cpu_threads=self.settings.cpu_threads,
                local_files_only=True,
            )
            if self.settings.language:
                self._fitted = FittedWhisper(self._model, self.settings.language)
            self.load_seconds = time.monotonic() - started

    async def load(self) -> None:
        await asyncio.to_thread(self.load_sync)

    def transcribe_sync(
        self, pcm16: bytes, *, hotwords: str | None = None, initial_prompt: str | None = None
    ) -> str:
        """The text of `pcm16` (16 kHz mono PCM16 LE). Blocking: use `transcribe` from async
        code. Per-call `hotwords`/`initial_prompt` override the settings."""
        if len(pcm16) % 2:
            raise AudioFormatError(f"PCM16 needs an even number of bytes, got {len(pcm16)}")
        self.load_sync()
        if not pcm16:
            return ""
        audio = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        s = self.settings
        hotwords = hotwords if hotwords is not None else s.hotwords
        initial_prompt = initial_prompt if initial_prompt is not None else s.initial_prompt
        if s.fitted_window and self._fitted is not None:
            text = self._fitted.transcribe(
                audio, beam_size=s.beam_size, hotwords=hotwords, initial_prompt=initial_prompt
            )
            if text is not None:
                self.windows["fitted"] += 1
                return text
        self.windows["full"] += 1
        segments, _info = self._model.transcribe(
            audio,
            language=s.language,
            beam_size=s.beam_size,
            hotwords=hotwords,
            initial_prompt=initial_prompt,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        return " ".join(seg.text.strip() for seg in segments).strip()

    async def transcribe(
        self, pcm16: bytes, *, hotwords: str | None = None, initial_prompt: str | None = None
    ) -> str:
        """`transcribe_sync` in a worker thread."""
        return await asyncio.to_thread(
            self.transcribe_sync, pcm16, hotwords=hotwords, initial_prompt=initial_prompt
        )
