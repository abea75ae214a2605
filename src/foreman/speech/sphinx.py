"""Speech to text with CMU pocketsphinx: the offline engine's light alternative to Whisper.

`SphinxTranscriber` has the interface the engine uses of `WhisperTranscriber` (`load_sync`,
`load`, `transcribe_sync`, `transcribe`, `load_seconds`): PCM16 LE mono at 16 kHz in, text
out. It decodes with the full US English model inside the pocketsphinx wheel (acoustic model,
the trigram language model `en-us.lm.bin` and the CMU dictionary), so it needs no download
and loads in well under a second; it is much less accurate than Whisper on real voices and
reads espeak-ng's formant voice hardly at all.

A pocketsphinx `Decoder` keeps the utterance being decoded inside itself, so it is not
thread-safe: one decoder per transcriber and a lock around each utterance (the calls of a
server take turns, as they do on Whisper).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

from foreman.exceptions import AudioFormatError
from foreman.speech.packaged import ModelUnavailable

__all__ = ["SPHINX_INSTALL_HINT", "SphinxTranscriber"]

SPHINX_INSTALL_HINT = "pip install 'foreman-voice[wake]'"


class SphinxTranscriber:
    """One pocketsphinx decoder on the wheel's English model; safe to share between calls."""

    name = "pocketsphinx (CMU en-us, trigram LM)"

    def __init__(self) -> None:
        self._decoder: Any = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None
        self.model_dir: Path | None = None

    def load_sync(self) -> None:
        """Load the decoder (blocking; idempotent). Raises ModelUnavailable with the fix."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._decoder is not None:
            return
        if importlib.util.find_spec("pocketsphinx") is None:
            raise ModelUnavailable(
                'pocketsphinx is not installed ([local] stt = "pocketsphinx"); install it '
                f"with: {SPHINX_INSTALL_HINT}"
            )
        from pocketsphinx import Decoder, get_model_path

        started = time.monotonic()
        model = Path(get_model_path()) / "en-us"
        self._decoder = Decoder(
            hmm=str(model / "en-us"),
            lm=str(model / "en-us.lm.bin"),
            dict=str(model / "cmudict-en-us.dict"),
            samprate=16000,
            # The lattice rescoring pass takes about as long again as the search and
            # measured no better on flite's voices.
            bestpath=False,
            loglevel="FATAL",
        )
        self.model_dir = model
        self.load_seconds = time.monotonic() - started

    async def load(self) -> None:
        await asyncio.to_thread(self.load_sync)

    def transcribe_sync(self, pcm16: bytes) -> str:
        """The text of `pcm16` (16 kHz mono PCM16 LE), lower case without punctuation.
        Blocking: use `transcribe` from async code."""
        if len(pcm16) % 2:
            raise AudioFormatError(f"PCM16 needs an even number of bytes, got {len(pcm16)}")
        with self._lock:
            self._load_locked()
            if not pcm16:
                return ""
            decoder = self._decoder
            decoder.start_utt()
            decoder.process_raw(pcm16, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
        return str(hyp.hypstr).strip() if hyp is not None else ""

    async def transcribe(self, pcm16: bytes) -> str:
        """`transcribe_sync` in a worker thread."""
        return await asyncio.to_thread(self.transcribe_sync, pcm16)
