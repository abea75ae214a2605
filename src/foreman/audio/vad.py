"""Energy voice-activity detection with hysteresis and an adaptive noise floor.

Used by the mock realtime server (server VAD over appended audio) and the wake sentinel. The
optional Silero detector with the same `process`/`speaking` API lives in `silero.py`.

How `EnergyVad` decides, per frame of `frame_ms`:
* level = frame RMS in dBFS;
* noise floor = the minimum level over the previous `floor_window_ms` (minimum statistics:
  speech has gaps between syllables, stationary noise does not), never below `min_floor_db`;
* not speaking: a run of frames each at least `start_db` above the floor, lasting
  `min_speech_ms`, starts speech at the run's first sample (no padding added);
* speaking: a run of frames each below floor + `stop_db` (the lower, hysteresis threshold),
  lasting `min_silence_ms`, stops speech at the run's first sample.

Events are emitted when they are decided (so a `stop` comes `min_silence_ms` late) but carry
the true sample offset from stream start; divide by the rate for `audio_start_ms`/`audio_end_ms`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from foreman.exceptions import AudioFormatError

__all__ = ["EnergyVad", "HysteresisGate", "VadEvent"]

_FULL_SCALE_SQ = 32768.0 * 32768.0
_SILENT_DB = -120.0  # the level reported for digital silence


@dataclass(frozen=True, slots=True)
class VadEvent:
    """`start`: first sample of speech. `stop`: first sample of the silence that ended it."""

    kind: Literal["start", "stop"]
    sample: int

    def ms(self, sample_rate: int) -> int:
        """The offset in whole milliseconds (e.g. for `audio_start_ms`)."""
        return self.sample * 1000 // sample_rate


class HysteresisGate:
    """The speech/silence state machine shared by the energy and Silero detectors.

    Per frame the detector says whether the frame clears the start threshold and whether it is
    below the (lower) stop threshold; the gate applies the minimum durations and returns an
    event when speech starts or stops.
    """

    __slots__ = ("_run", "_run_start", "_silence_frames", "_speech_frames", "speaking")

    def __init__(self, speech_frames: int, silence_frames: int) -> None:
        self._speech_frames = max(1, speech_frames)
        self._silence_frames = max(1, silence_frames)
        self.reset()

    def reset(self) -> None:
        self.speaking = False
        self._run = 0  # frames in the current run (loud while idle, quiet while speaking)
        self._run_start = 0

    @property
    def quiet_since(self) -> int | None:
        """While speaking: the sample offset where the current run of quiet frames began
        (speech may be ending there), or None if the last frame was not quiet."""
        return self._run_start if self.speaking and self._run > 0 else None

    def step(self, pos: int, loud: bool, quiet: bool) -> VadEvent | None:
        """`pos`: sample offset of this frame; `loud`: above start; `quiet`: below stop."""
        if not self.speaking:
            if not loud:
                self._run = 0
                return None
            if self._run == 0:
                self._run_start = pos
            self._run += 1
            if self._run >= self._speech_frames:
                self.speaking = True
                self._run = 0
                return VadEvent("start", self._run_start)
            return None
        if not quiet:
            self._run = 0
            return None
        if self._run == 0:
            self._run_start = pos
        self._run += 1
        if self._run >= self._silence_frames:
            self.speaking = False
            self._run = 0
            return VadEvent("stop", self._run_start)
        return None


class EnergyVad:
    """Feed PCM16 LE mono of any chunk length to `process`; act on the returned events."""

    def __init__(  # noqa: PLR0917 - positional order is the published API
        self,
        sample_rate: int,
        frame_ms: int = 20,
        start_db: float = 12.0,
        stop_db: float = 6.0,
        min_speech_ms: int = 60,
        min_silence_ms: int = 500,
        *,
        floor_window_ms: int = 3000,
        min_floor_db: float = -70.0,
    ) -> None:
        if sample_rate <= 0:
            raise AudioFormatError(f"sample rate must be positive, got {sample_rate}")
        self._frame = sample_rate * frame_ms // 1000
        if frame_ms <= 0 or self._frame <= 0:
            raise AudioFormatError(f"frame_ms={frame_ms} gives no samples at {sample_rate} Hz")
        if stop_db > start_db:
            raise AudioFormatError(
                f"stop_db ({stop_db}) must not exceed start_db ({start_db}): the hysteresis "
                "needs the stop threshold at or below the start threshold"
            )
        if min_speech_ms < 0 or min_silence_ms < 0:
            raise AudioFormatError("min_speech_ms and min_silence_ms must be >= 0")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.start_db = start_db
        self.stop_db = stop_db
        self.min_floor_db = min_floor_db
        self._gate = HysteresisGate(
            math.ceil(min_speech_ms / frame_ms), math.ceil(min_silence_ms / frame_ms)
        )
        self._window = max(1, floor_window_ms // frame_ms)
        self.reset()

    # state ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: the next sample is sample 0 of a new stream, not speaking."""
        self._buf = bytearray()
        self._pos = 0  # sample offset of the next frame
        self._frame_index = 0
        self._gate.reset()
        # Monotonic deque of (frame_index, level) for a sliding-window minimum.
        self._mins: deque[tuple[int, float]] = deque()
        self.level_db = _SILENT_DB
        self.noise_floor_db = self.min_floor_db

    @property
    def speaking(self) -> bool:
        return self._gate.speaking

    # processing ----------------------------------------------------------------------------
    def process(self, pcm16: bytes) -> list[VadEvent]:
        """Consume a chunk (any length; partial frames wait for the next call)."""
        self._buf += pcm16
        frame_bytes = self._frame * 2
        n = len(self._buf) // frame_bytes
        if n == 0:
            return []
        x = np.frombuffer(self._buf, dtype="<i2", count=n * self._frame).astype(np.float64)
        energy = np.einsum("ij,ij->i", x.reshape(n, self._frame), x.reshape(n, self._frame))
        del self._buf[: n * frame_bytes]
        levels = 10.0 * np.log10(energy / (self._frame * _FULL_SCALE_SQ) + 1e-12)
        events: list[VadEvent] = []
        for level in levels.tolist():
            ev = self._step(level)
            if ev is not None:
                events.append(ev)
        return events

    def _floor(self) -> float:
        if not self._mins:
            return self.min_floor_db
        return max(self._mins[0][1], self.min_floor_db)

    def _step(self, level: float) -> VadEvent | None:
        floor = self._floor()
        self.noise_floor_db = floor
        self.level_db = level
        event = self._gate.step(
            self._pos, level >= floor + self.start_db, level < floor + self.stop_db
        )
        self._push_level(level)
        self._pos += self._frame
        return event

    def _push_level(self, level: float) -> None:
        idx = self._frame_index
        mins = self._mins
        while mins and mins[-1][1] >= level:
            mins.pop()
        mins.append((idx, level))
        while mins[0][0] <= idx - self._window:
            mins.popleft()
        self._frame_index = idx + 1
