"""Playback jitter buffer: absorbs the model's bursts, plays whole frames at the sink's pace.

The model sends audio much faster than real time and in uneven deltas; a sink (sound card
callback, a paced Twilio sender) wants exactly one frame every `frame_ms`. The buffer:

* primes: nothing plays until `target_ms` is buffered (or `end_of_stream()` says no more is
  coming), so normal jitter never starves the sink;
* on underrun (playing, and less than a frame left) returns a silence frame, counts it, and
  primes again to `target_ms` before resuming, instead of stuttering frame by frame;
* is bounded: past `max_ms` the oldest audio is dropped in whole frames and counted;
* flushes at once on barge-in (`flush()`), bumping `generation`. Every `Frame` carries the
  generation it was popped in, so a consumer holding frames can drop those from before a flush.

Single-threaded, no clock: the caller pops one frame per sink tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from foreman.audio.formats import AudioFormat, Encoding
from foreman.exceptions import AudioFormatError

__all__ = ["Frame", "JitterBuffer", "silence_byte"]

_SILENCE_BYTE: Final = {Encoding.PCM16: 0x00, Encoding.PCMU: 0xFF, Encoding.PCMA: 0xD5}


def silence_byte(fmt: AudioFormat) -> int:
    """The byte that encodes (near) zero in `fmt` (0x00 PCM16, 0xFF µ-law, 0xD5 A-law)."""
    return _SILENCE_BYTE[fmt.encoding]


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of audio for the sink. `silence` frames were generated, not received."""

    data: bytes
    generation: int
    silence: bool


class JitterBuffer:
    """Push model audio as it arrives; pop exactly one frame per sink tick."""

    def __init__(
        self, fmt: AudioFormat, frame_ms: int = 20, target_ms: int = 60, max_ms: int = 2000
    ) -> None:
        self.fmt = fmt
        self.frame_ms = frame_ms
        self.frame_bytes = fmt.bytes_for_ms(frame_ms)
        if frame_ms <= 0 or self.frame_bytes <= 0:
            raise AudioFormatError(f"frame_ms={frame_ms} gives no samples in {fmt}")
        if not 0 <= target_ms <= max_ms:
            raise AudioFormatError(f"need 0 <= target_ms ({target_ms}) <= max_ms ({max_ms})")
        if max_ms < frame_ms:
            raise AudioFormatError(f"max_ms ({max_ms}) must hold at least one frame ({frame_ms})")
        self.target_ms = target_ms
        self.max_ms = max_ms
        self._target_bytes = max(fmt.bytes_for_ms(target_ms), self.frame_bytes)
        self._max_bytes = max(fmt.bytes_for_ms(max_ms), self.frame_bytes)
        self._silence = bytes([silence_byte(fmt)]) * self.frame_bytes
        self._buf = bytearray()
        self._playing = False  # primed and handing out audio
        self._ended = False  # end_of_stream(): play out what is left without priming
        self.generation = 0
        self.underruns = 0
        self.overruns = 0
        self.overrun_dropped_ms = 0.0
        self.frames_out = 0

    # state ---------------------------------------------------------------------------------
    @property
    def buffered_ms(self) -> float:
        return self.fmt.ms_for_bytes(len(self._buf))

    @property
    def free_ms(self) -> float:
        """Room left before `push` starts dropping the oldest audio. Producers that receive
        audio faster than real time (model deltas) can hold back while this is small."""
        return self.fmt.ms_for_bytes(max(self._max_bytes - len(self._buf), 0))

    @property
    def playing(self) -> bool:
        """True once primed and until the buffer runs dry or is flushed."""
        return self._playing

    # input ---------------------------------------------------------------------------------
    def push(self, data: bytes) -> None:
        """Queue audio (any length; bursts are fine). Past `max_ms` the oldest whole frames go."""
        if not data:
            return
        self._ended = False
        self._buf += data
        excess = len(self._buf) - self._max_bytes
        if excess > 0:
            fb = self.frame_bytes
            drop = min(-(-excess // fb) * fb, len(self._buf))
            del self._buf[:drop]
            self.overruns += 1
            self.overrun_dropped_ms += self.fmt.ms_for_bytes(drop)
        if not self._playing and len(self._buf) >= self._target_bytes:
            self._playing = True

    def end_of_stream(self) -> None:
        """No more audio for now (e.g. `response.output_audio.done`): play out the rest,
        padding the last partial frame with silence, without waiting for `target_ms`."""
        self._ended = True
        if self._buf:
            self._playing = True

    # output --------------------------------------------------------------------------------
    def pop_frame(self) -> Frame:
        """Exactly one frame. Silence while priming (not counted) or on underrun (counted)."""
        fb = self.frame_bytes
        buf = self._buf
        if self._playing:
            if len(buf) >= fb:
                data = bytes(buf[:fb])
                del buf[:fb]
                self.frames_out += 1
                if not buf and self._ended:
                    self._playing = False
                return Frame(data, self.generation, False)
            if self._ended:
                # Tail of a finished stream: pad the partial frame; not an underrun.
                data = bytes(buf) + self._silence[len(buf) :]
                buf.clear()
                self._playing = False
                self.frames_out += 1
                return Frame(data, self.generation, False)
            # Starved mid-stream: count it and prime again so playback resumes smoothly.
            self.underruns += 1
            self._playing = False
        return Frame(self._silence, self.generation, True)

    def flush(self) -> int:
        """Drop everything at once (barge-in); returns the new generation."""
        self._buf.clear()
        self._playing = False
        self._ended = False
        self.generation += 1
        return self.generation
