"""What the desk speaker plays, shared by the event loop (which queues the model's audio) and
the device's output callback (which takes one block at a time), and what was really heard.

`SpeakerFeed` wraps a `JitterBuffer` and a ledger of which segment each queued byte belongs
to. The output callback's `take(nbytes)` pops exactly one block and counts how many bytes of
each segment went to the device: those counts are the heard positions (from the sink, never
from the wall clock). `cut()` (a barge-in) empties everything at once and says where the
first unfinished segment stopped. One small lock guards both sides; nothing waits under it
but list and buffer operations (microseconds), so the callback never stalls.

Positions count audio handed to the device; the device's own output latency (a few tens of
milliseconds) is not subtracted, so a cut may count that much unheard audio as heard.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from foreman.audio.formats import AudioFormat
from foreman.audio.jitter import JitterBuffer

__all__ = ["Played", "SpeakerFeed"]

_FULL_SCALE_DB = 20 * np.log10(32768.0)


@dataclass(frozen=True, slots=True)
class Played:
    """One output block: bytes of each segment it played, its level, and whether the queue
    ran empty with it."""

    segments: tuple[tuple[str, int], ...]
    level_db: float
    drained: bool


class SpeakerFeed:
    def __init__(self, fmt: AudioFormat, frame_ms: int, target_ms: int, max_ms: int) -> None:
        self.fmt = fmt
        self._lock = threading.Lock()
        self._jitter = JitterBuffer(fmt, frame_ms=frame_ms, target_ms=target_ms, max_ms=max_ms)
        self._queue: deque[list[str | int]] = deque()  # [segment, bytes not yet played]
        self._heard: dict[str, int] = {}  # bytes played per segment since it began
        self._queued = 0  # bytes in the ledger
        self._carry = bytearray()  # part of a frame the device did not take yet

    # --- the event loop's side ---------------------------------------------------------
    def push(self, segment: str, audio: bytes) -> None:
        with self._lock:
            self._jitter.push(audio)
            if self._queue and self._queue[-1][0] == segment:
                self._queue[-1][1] = int(self._queue[-1][1]) + len(audio)
            else:
                self._queue.append([segment, len(audio)])
            self._queued += len(audio)

    def end_of_stream(self) -> None:
        with self._lock:
            self._jitter.end_of_stream()

    def cut(self) -> tuple[str, int] | None:
        """Drop everything queued; (first unfinished segment, bytes of it heard), or None
        when nothing but filler was queued."""
        with self._lock:
            stopped: tuple[str, int] | None = None
            for segment, _left in self._queue:
                if segment:
                    stopped = (str(segment), self._heard.get(str(segment), 0))
                    break
            self._jitter.flush()
            self._queue.clear()
            self._queued = 0
            self._carry.clear()
            return stopped

    @property
    def playing(self) -> bool:
        """Audio other than filler is queued and not played yet."""
        with self._lock:
            return any(segment for segment, _ in self._queue)

    def heard_bytes(self, segment: str) -> int:
        with self._lock:
            return self._heard.get(segment, 0)

    def forget(self, segment: str) -> None:
        with self._lock:
            self._heard.pop(segment, None)

    @property
    def stats(self) -> dict[str, int]:
        j = self._jitter
        return {"underruns": j.underruns, "overruns": j.overruns, "frames_out": j.frames_out}

    # --- the device's side (PortAudio's thread) ------------------------------------------
    def take(self, nbytes: int) -> tuple[bytes, Played | None]:
        """Exactly `nbytes` for the device, and what they played (None: only silence). The
        device block is one jitter frame; another size is served through a carry, and its
        audio counts as played when it is popped for the device."""
        with self._lock:
            real = 0
            carry = self._carry
            while len(carry) < nbytes:
                before = self._jitter.buffered_ms
                frame = self._jitter.pop_frame()
                carry += frame.data
                if not frame.silence:
                    real += self._bytes(before - self._jitter.buffered_ms)
            data = bytes(carry[:nbytes])
            del carry[:nbytes]
            real = min(real, self._queued)
            if real <= 0:
                return data, None
            segments: list[tuple[str, int]] = []
            while real and self._queue:
                head = self._queue[0]
                n = min(int(head[1]), real)
                head[1] = int(head[1]) - n
                real -= n
                self._queued -= n
                if head[0]:
                    self._heard[str(head[0])] = self._heard.get(str(head[0]), 0) + n
                    segments.append((str(head[0]), n))
                if head[1] == 0:
                    self._queue.popleft()
            drained = not any(segment for segment, _ in self._queue)
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32)
        rms = float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0
        level = 20 * np.log10(rms + 1e-9) - _FULL_SCALE_DB
        return data, Played(tuple(segments), float(level), drained)

    def _bytes(self, ms: float) -> int:
        bps = self.fmt.bytes_per_sample
        return round(ms * self.fmt.sample_rate / 1000) * bps
