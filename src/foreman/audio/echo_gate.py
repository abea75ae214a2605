"""Half-duplex echo safety for an open speaker: is the microphone the user, or the assistant?

With a speaker and a microphone in one room the model would hear itself and cut itself off
(server VAD) or answer itself. `EchoGate` decides per frame of microphone audio:

* while the assistant is silent, everything passes, and the room's noise floor is learnt
  (minimum statistics, as in `vad.EnergyVad`);
* while it speaks (and for `hold_ms` after the speaker last played: the device and room
  latency, and the gaps of a reply that arrives in pieces), a frame counts as the user only
  when it is `guard_db` above both the speech threshold (floor + `start_db`) and the echo
  expected now: the loudest block the speaker played in the last `hold_ms` plus the room's
  coupling (how much louder or quieter the echo arrives than it was played: the 90th
  percentile over the last two seconds of echo; 0 dB until then, as a loopback hears it).
  Frames that do not count are replaced by silence before they reach the model, so its turn
  detection never hears the echo;
* `min_speech_ms` of such frames in a row is the user talking over the assistant: the
  caller stops playback at once (a local barge-in) and audio passes again.

Acoustic echo cancellation would let quieter speech through; the operating system's echo
canceller (PulseAudio/PipeWire `module-echo-cancel`, WebRTC's processing) sees the true
speaker signal and is the place for it (docs/ARCHITECTURE.md). Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import numpy as np

__all__ = ["EchoGate"]

_FULL_SCALE_DB: Final = 20 * np.log10(32768.0)
_SILENT_DB: Final = -120.0


def level_db(pcm16: bytes) -> float:
    """RMS level of PCM16 in dBFS."""
    if len(pcm16) < 2:
        return _SILENT_DB
    x = np.frombuffer(pcm16, dtype="<i2", count=len(pcm16) // 2).astype(np.float32)
    rms = float(np.sqrt(np.mean(x * x)))
    return max(_SILENT_DB, 20 * float(np.log10(rms + 1e-9)) - float(_FULL_SCALE_DB))


class EchoGate:
    def __init__(
        self,
        *,
        frame_ms: int = 20,
        start_db: float = 12.0,
        guard_db: float = 6.0,
        min_speech_ms: int = 60,
        hold_ms: int = 1000,
        floor_window_ms: int = 3000,
        min_floor_db: float = -70.0,
    ) -> None:
        self.start_db = start_db
        self.guard_db = guard_db
        self.min_floor_db = min_floor_db
        self._need = max(1, min_speech_ms // frame_ms)
        self._hold = max(1, hold_ms // frame_ms)
        self._out: deque[float] = deque(maxlen=self._hold)
        self._quiet_frames = self._hold + 1  # mic frames since the speaker last played
        # Echo level minus played level, for audible echo frames (the room's coupling).
        self._coupling: deque[float] = deque(maxlen=max(1, 2000 // frame_ms))
        self._levels: deque[float] = deque(maxlen=max(1, floor_window_ms // frame_ms))
        self._run = 0
        self.user_over = False  # the user is talking over the assistant (until it stops)
        self.gated_frames = 0
        self.echo_frames = 0
        self.barge_ins = 0

    @property
    def floor_db(self) -> float:
        return max(min(self._levels, default=self.min_floor_db), self.min_floor_db)

    @property
    def coupling_db(self) -> float:
        """How much louder (> 0) or quieter the echo arrives than it was played."""
        if len(self._coupling) < 10:
            return 0.0
        ranked = sorted(self._coupling)  # the 90th percentile: most echo, not its outliers
        return max(-40.0, min(ranked[int(0.9 * (len(ranked) - 1))], 20.0))

    def output(self, level: float) -> None:
        """The level of a block the speaker just played."""
        self._out.append(level)
        self._quiet_frames = 0

    def speech_level(self, level: float) -> bool:
        """Is `level` speech in this room (above the learnt floor)?"""
        return level >= self.floor_db + self.start_db

    def frame(self, pcm16: bytes, assistant_playing: bool) -> tuple[bytes, bool]:
        """(audio for the model, True once when the user starts talking over the assistant).
        The gate stays shut for `hold_ms` after the speaker last played (the echo's tail,
        and the gaps of a reply that arrives in pieces)."""
        level = level_db(pcm16)
        self._quiet_frames += 1
        if not assistant_playing and self._quiet_frames > self._hold:
            self._levels.append(level)
            self._run = 0
            self.user_over = False
            self._out.clear()
            return pcm16, False
        if self.user_over:
            return pcm16, False
        played = max(self._out, default=_SILENT_DB)
        threshold = max(self.floor_db + self.start_db, played + self.coupling_db) + self.guard_db
        if level >= threshold:
            self._run += 1
            if self._run >= self._need:
                self.user_over = True
                self.barge_ins += 1
                return pcm16, True
        else:
            self._run = 0
        self.gated_frames += 1
        if level >= self.floor_db + self.start_db and played > _SILENT_DB:
            self.echo_frames += 1  # the speaker, heard at the microphone
            self._coupling.append(level - played)
        return bytes(len(pcm16)), False
