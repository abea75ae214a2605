"""Silero VAD on onnxruntime alone: its ONNX file ships inside Foreman, no torch.

The `silero-vad` wheel declares torch although its `data/silero_vad.onnx` runs on onnxruntime
alone, so Foreman carries that 2.3 MB file itself (`silero_vad.onnx` next to this module, MIT,
its licence in `silero_vad.LICENSE`) and checks its sha256 before the first use: the offline
extra needs nothing installed on the side. We drive the model the way silero's `OnnxWrapper`
does: 512-sample frames at 16 kHz (256 at 8 kHz) with 64 (32) samples
of context prepended and a (2, 1, 128) recurrent state carried between calls.

Input at other rates (24 kHz, 48 kHz) is resampled to 16 kHz with a `StreamResampler`; event
sample offsets are reported at the caller's rate. Same `process`/`speaking`/`reset` API as
`EnergyVad`, with the same hysteresis gate (start at `threshold`, stop below
`threshold - 0.15` as silero's own iterator does).
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from foreman.audio.resample import StreamResampler
from foreman.audio.vad import HysteresisGate, VadEvent
from foreman.exceptions import AudioFormatError, ForemanError

__all__ = ["MODEL_SHA256", "SileroUnavailable", "SileroVad", "find_model"]

# silero_vad/data/silero_vad.onnx of the silero-vad 6.2.3 wheel (the v6 model).
MODEL_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
PACKAGED_MODEL = Path(__file__).with_name("silero_vad.onnx")


class SileroUnavailable(ForemanError):
    """onnxruntime or the packaged ONNX file is missing, or the file is not the one shipped."""


def find_model() -> Path:
    """The packaged `silero_vad.onnx`, its sha256 checked (once per process)."""
    return _verified(PACKAGED_MODEL)


@functools.cache
def _verified(path: Path) -> Path:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise SileroUnavailable(
            f"the packaged Silero model is missing ({path}: {exc.strerror}); "
            "reinstall foreman-voice"
        ) from None
    if digest != MODEL_SHA256:
        raise SileroUnavailable(
            f"the packaged Silero model {path} has sha256 {digest}, expected {MODEL_SHA256}; "
            "reinstall foreman-voice"
        )
    return path


def _session(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise SileroUnavailable(
            "onnxruntime is not installed; it runs the Silero VAD (pip install onnxruntime, "
            "or the 'silero' extra)"
        ) from exc
    opts = ort.SessionOptions()
    # One thread: per-frame inference is ~0.1 ms and many calls share the machine.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class SileroVad:
    """Feed PCM16 LE mono of any chunk length; returns `VadEvent`s like `EnergyVad`."""

    def __init__(
        self,
        sample_rate: int,
        threshold: float = 0.5,
        min_speech_ms: int = 64,
        min_silence_ms: int = 500,
        *,
        model_path: str | Path | None = None,
    ) -> None:
        if sample_rate <= 0:
            raise AudioFormatError(f"sample rate must be positive, got {sample_rate}")
        if not 0.0 < threshold < 1.0:
            raise AudioFormatError(f"threshold must be in (0, 1), got {threshold}")
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.stop_threshold = max(threshold - 0.15, 0.01)
        self._model_rate = sample_rate if sample_rate in (8000, 16000) else 16000
        self._frame = 512 if self._model_rate == 16000 else 256
        self._context_size = 64 if self._model_rate == 16000 else 32
        frame_ms = self._frame * 1000 / self._model_rate
        self._gate = HysteresisGate(
            math.ceil(min_speech_ms / frame_ms), math.ceil(min_silence_ms / frame_ms)
        )
        path = Path(model_path) if model_path else find_model()
        if not path.is_file():
            raise SileroUnavailable(f"no Silero model file at {path}")
        self._sess = _session(path)
        self._sr = np.array(self._model_rate, dtype=np.int64)
        self._resampler = (
            StreamResampler(sample_rate, self._model_rate)
            if self._model_rate != sample_rate
            else None
        )
        self.reset()

    def reset(self) -> None:
        """Forget audio and model state; the next sample is sample 0 of a new stream."""
        self._carry = b""
        self._pending = np.zeros(0, dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._context_size, dtype=np.float32)
        self._pos = 0  # model-rate sample offset of the next frame
        self._gate.reset()
        self.probability = 0.0
        if self._resampler is not None:
            self._resampler.reset()

    @property
    def speaking(self) -> bool:
        return self._gate.speaking

    @property
    def pause_started(self) -> int | None:
        """While speaking: the sample (at the caller's rate) where the current pause began,
        the `stop` event's sample if the pause lasts; None if the last frame was not quiet.
        It lets a listener start work on the utterance before the pause is long enough to
        end it."""
        quiet = self._gate.quiet_since
        return None if quiet is None else self._to_input_rate(quiet)

    def _to_input_rate(self, model_sample: int) -> int:
        return model_sample * self.sample_rate // self._model_rate

    def process(self, pcm16: bytes) -> list[VadEvent]:
        """Consume a chunk; events carry sample offsets at the caller's `sample_rate`."""
        if self._carry:
            pcm16 = self._carry + pcm16
            self._carry = b""
        if len(pcm16) % 2:
            self._carry = pcm16[-1:]
            pcm16 = pcm16[:-1]
        samples = np.frombuffer(pcm16, dtype="<i2")
        if self._resampler is not None:
            samples = self._resampler.process_array(samples)
        x = samples.astype(np.float32) * (1.0 / 32768.0)
        buf = np.concatenate((self._pending, x)) if self._pending.size else x
        n = buf.size // self._frame
        events: list[VadEvent] = []
        for i in range(n):
            prob = self._infer(buf[i * self._frame : (i + 1) * self._frame])
            ev = self._gate.step(self._pos, prob >= self.threshold, prob < self.stop_threshold)
            self._pos += self._frame
            if ev is not None:
                events.append(VadEvent(ev.kind, self._to_input_rate(ev.sample)))
        self._pending = buf[n * self._frame :].copy()
        return events

    def _infer(self, frame: npt.NDArray[np.float32]) -> float:
        inp = np.concatenate((self._context, frame))[None, :]
        out, state = self._sess.run(None, {"input": inp, "state": self._state, "sr": self._sr})
        self._state = state
        self._context = frame[-self._context_size :]
        self.probability = float(out[0, 0])
        return self.probability
