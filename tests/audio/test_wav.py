"""WAV bytes in and out (`foreman.audio.wav`)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from foreman.audio.g711 import pcm16_to_alaw, pcm16_to_ulaw
from foreman.audio.wav import pcm16_of, read_wav, resample_pcm16, write_wav
from foreman.exceptions import AudioFormatError
from foreman.testing.speech import tone


def wav_bytes(frames: bytes, *, width: int, channels: int, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


@given(st.binary(max_size=4000).map(lambda b: b[: len(b) // 2 * 2]), st.sampled_from([8000, 24000]))
def test_what_is_written_reads_back_the_same(pcm: bytes, rate: int) -> None:
    data = write_wav(pcm, rate)
    with wave.open(io.BytesIO(data)) as w:  # what a player sees
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, rate)
    assert read_wav(data) == (pcm, rate)


def test_other_widths_and_channels_become_16_bit_mono() -> None:
    samples = np.array([-32768, -256, 0, 256, 32767], dtype=np.int32)
    as16 = samples.astype("<i2").tobytes()
    # 8-bit WAV samples are unsigned: 0 is the lowest, 128 is silence.
    eight = (samples // 256 + 128).astype(np.uint8).tobytes()
    assert (
        read_wav(wav_bytes(eight, width=1, channels=1, rate=8000))[0]
        == ((samples // 256) * 256).astype("<i2").tobytes()
    )
    # 24-bit: three little-endian bytes, the top two are the 16-bit sample.
    wide = b"".join((int(s) * 256).to_bytes(3, "little", signed=True) for s in samples)
    assert read_wav(wav_bytes(wide, width=3, channels=1, rate=16000)) == (as16, 16000)
    wider = (samples * 65536).astype("<i4").tobytes()
    assert read_wav(wav_bytes(wider, width=4, channels=1, rate=16000)) == (as16, 16000)
    # Stereo: the channels are averaged.
    left, right = np.array([1000, -2000], dtype="<i2"), np.array([3000, 2000], dtype="<i2")
    stereo = np.column_stack([left, right]).astype("<i2").tobytes()
    mono, rate = read_wav(wav_bytes(stereo, width=2, channels=2, rate=44100))
    assert rate == 44100 and np.frombuffer(mono, "<i2").tolist() == [2000, 0]


@pytest.mark.parametrize(
    "data",
    [b"", b"not a wav file at all", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00"],
)
def test_what_is_not_a_pcm_wav_is_one_line_with_the_fix(data: bytes) -> None:
    with pytest.raises(AudioFormatError) as caught:
        read_wav(data)
    message = str(caught.value)
    assert "\n" not in message and "sox IN.wav -b 16 -c 1 OUT.wav" in message


def test_resampling_keeps_a_tone_and_its_length() -> None:
    a = tone(440, 1000, sample_rate=16000)
    b = resample_pcm16(a, 16000, 8000)
    assert len(b) == len(a) // 2
    spectrum = np.abs(np.fft.rfft(np.frombuffer(b, "<i2")))
    assert np.argmax(spectrum) == 440  # 1 Hz bins over one second
    assert resample_pcm16(a, 16000, 16000) is a


def test_g711_and_pcm16_decode_to_pcm16() -> None:
    pcm = tone(300, 100, sample_rate=8000)
    assert pcm16_of(pcm, "pcm16") == pcm
    for name, encode in (("g711_ulaw", pcm16_to_ulaw), ("g711_alaw", pcm16_to_alaw)):
        decoded = np.frombuffer(pcm16_of(encode(pcm), name), "<i2").astype(np.int32)
        assert np.max(np.abs(decoded - np.frombuffer(pcm, "<i2"))) < 300  # G.711 step size
    with pytest.raises(AudioFormatError, match="unknown audio format 'opus'"):
        pcm16_of(b"", "opus")
