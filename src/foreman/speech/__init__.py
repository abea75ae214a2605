"""Offline speech models: weights shipped inside packages, verified, and run on the CPU.

- `packaged`: find data files of installed distributions without importing them, join split
  files into the user's cache atomically, refuse bytes whose size or sha256 differ.
- `catalog`: the packaged models and their recorded sizes and hashes.
- `whisper`: `WhisperTranscriber`, PCM16 at 16 kHz in, text out, inference in a worker thread.

Nothing here downloads anything; a missing package is a one-line error naming the install.
"""

from foreman.speech.catalog import OFFLINE_INSTALL_HINT, WHISPER_BASE
from foreman.speech.packaged import (
    ModelBundle,
    ModelFile,
    ModelUnavailable,
    ModelVerificationError,
    PackagedData,
    ensure_bundle,
    models_cache_dir,
)
from foreman.speech.whisper import SAMPLE_RATE, WhisperSettings, WhisperTranscriber

__all__ = [
    "OFFLINE_INSTALL_HINT",
    "SAMPLE_RATE",
    "WHISPER_BASE",
    "ModelBundle",
    "ModelFile",
    "ModelUnavailable",
    "ModelVerificationError",
    "PackagedData",
    "WhisperSettings",
    "WhisperTranscriber",
    "ensure_bundle",
    "models_cache_dir",
]
