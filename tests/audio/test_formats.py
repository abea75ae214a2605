"""AudioFormat: frame arithmetic, GA format objects, legacy config names, errors."""

from __future__ import annotations

import typing

import pytest

from foreman.audio.formats import (
    ENCODING_BY_NAME,
    PCM16_24K,
    PCMA_8K,
    PCMU_8K,
    AudioFormat,
    AudioFormatName,
    Encoding,
)
from foreman.exceptions import AudioFormatError
from foreman.protocols.realtime.wire_formats import format_from_wire, format_to_wire


def test_frame_arithmetic() -> None:
    # 20 ms = 160 samples at 8 kHz = 480 samples (960 bytes) at 24k
    assert PCMU_8K.bytes_for_ms(20) == 160
    assert PCM16_24K.samples_for_ms(20) == 480
    assert PCM16_24K.bytes_for_ms(20) == 960
    assert PCMU_8K.ms_for_bytes(1600) == 200
    assert PCM16_24K.samples_for_bytes(960) == 480
    assert PCMA_8K.bytes_per_second == 8000


@pytest.mark.parametrize(
    ("fmt", "obj", "name"),
    [
        (PCM16_24K, {"type": "audio/pcm", "rate": 24000}, "pcm16"),
        (PCMU_8K, {"type": "audio/pcmu"}, "g711_ulaw"),
        (PCMA_8K, {"type": "audio/pcma"}, "g711_alaw"),
    ],
)
def test_ga_objects_and_config_names(fmt: AudioFormat, obj: dict[str, object], name: str) -> None:
    assert format_to_wire(fmt) == obj
    assert format_from_wire(obj) == fmt
    assert fmt.config_name == name
    assert AudioFormat.from_name(name) == fmt


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(AudioFormatError, match="valid names: pcm16, g711_ulaw"):
        AudioFormat.from_name("opus")
    with pytest.raises(AudioFormatError, match="audio/pcm, audio/pcmu, audio/pcma"):
        format_from_wire({"type": "audio/opus"})


def test_invalid_formats() -> None:
    with pytest.raises(AudioFormatError):
        AudioFormat(Encoding.PCMU, 16000)
    with pytest.raises(AudioFormatError):
        AudioFormat(Encoding.PCM16, 24000, channels=2)
    with pytest.raises(AudioFormatError, match="24000 Hz only"):
        format_to_wire(AudioFormat(Encoding.PCM16, 16000))


def test_the_name_type_lists_exactly_the_names_from_name_accepts() -> None:
    assert set(typing.get_args(AudioFormatName)) == set(ENCODING_BY_NAME)
    for name, encoding in ENCODING_BY_NAME.items():
        assert AudioFormat.from_name(name).encoding is encoding
        assert AudioFormat.from_name(f" {name.upper()} ").encoding is encoding
