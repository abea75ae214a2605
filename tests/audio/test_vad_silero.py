"""SileroVad: the packaged ONNX model on onnxruntime alone (no torch), on real speech."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from foreman.audio import silero
from foreman.audio.silero import SileroUnavailable, SileroVad
from foreman.testing.speech import synthesize

pytest.importorskip("onnxruntime")


def _scene(rate: int, noise_dbfs: float | None = None) -> tuple[bytes, int, int]:
    s = np.frombuffer(synthesize("Hello there. How are you doing today?", rate), "<i2")
    lead = np.zeros(rate, "<i2")
    tail = np.zeros(rate, "<i2")
    x = np.concatenate([lead, s, tail]).astype(np.float64)
    loud = np.flatnonzero(np.abs(x) > 300)
    if noise_dbfs is not None:
        rng = np.random.default_rng(11)
        x = x + rng.normal(0, 32768 * 10 ** (noise_dbfs / 20), len(x))
    return np.clip(x, -32768, 32767).astype("<i2").tobytes(), int(loud[0]), int(loud[-1])


def test_torch_is_not_needed() -> None:
    assert "torch" not in sys.modules or sys.modules["torch"] is None
    SileroVad(16000)
    assert "silero_vad" not in sys.modules  # the packaged file, not the silero-vad wheel


def test_the_model_ships_inside_the_package_with_its_licence() -> None:
    path = silero.find_model()
    assert path.parent == Path(silero.__file__).parent
    assert "MIT License" in path.with_name("silero_vad.LICENSE").read_text()


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_detects_speech(rate: int) -> None:
    data, first, last = _scene(rate)
    vad = SileroVad(rate)
    events = []
    step = rate // 50 * 2  # 20 ms chunks, not the model's frame size
    for i in range(0, len(data), step):
        events += vad.process(data[i : i + step])
    assert [e.kind for e in events] == ["start", "stop"]
    assert abs(events[0].sample - first) <= rate * 120 // 1000
    # The model's probability decays over a few frames after speech: stop lags a little.
    assert -rate * 60 // 1000 <= events[1].sample - last <= rate * 200 // 1000
    assert not vad.speaking


def test_noise_alone_is_not_speech() -> None:
    rng = np.random.default_rng(2)
    noise = np.clip(rng.normal(0, 1000, 16000 * 3), -32768, 32767).astype("<i2")
    vad = SileroVad(16000)
    assert vad.process(noise.tobytes()) == []


def test_speech_in_noise() -> None:
    data, first, _ = _scene(16000, noise_dbfs=-40)
    events = SileroVad(16000).process(data)
    assert [e.kind for e in events][:1] == ["start"]
    assert abs(events[0].sample - first) <= 16000 * 150 // 1000


def test_reset() -> None:
    data, _, _ = _scene(16000)
    vad = SileroVad(16000)
    first = vad.process(data)
    vad.reset()
    assert vad.process(data) == first


def test_missing_onnxruntime_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SileroUnavailable, match="onnxruntime is not installed"):
        SileroVad(16000)


def test_missing_packaged_model_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(silero, "PACKAGED_MODEL", tmp_path / "silero_vad.onnx")
    with pytest.raises(SileroUnavailable, match=r"packaged Silero model is missing.*reinstall"):
        SileroVad(16000)


def test_altered_packaged_model_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    altered = tmp_path / "silero_vad.onnx"
    shutil.copyfile(silero.find_model(), altered)
    with altered.open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(silero, "PACKAGED_MODEL", altered)
    with pytest.raises(SileroUnavailable, match=f"expected {silero.MODEL_SHA256}"):
        SileroVad(16000)


def test_missing_file_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SileroUnavailable, match="no Silero model file"):
        SileroVad(16000, model_path=tmp_path / "silero_vad.onnx")


@pytest.mark.parametrize("rate", [16000, 24000])
def test_chunking_invariance(rate: int) -> None:
    data, _, _ = _scene(rate)
    whole = SileroVad(rate).process(data)
    vad = SileroVad(rate)
    got = []
    rng = np.random.default_rng(rate)
    pos = 0
    while pos < len(data):
        n = int(rng.integers(1, 3000))  # odd sizes split samples
        got += vad.process(data[pos : pos + n])
        pos += n
    assert got == whole
