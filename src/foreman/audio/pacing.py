"""Outbound phone audio: whole 20 ms frames, a bounded lead ahead of real time.

Pure bookkeeping (no asyncio, time passed in). The call session pushes assistant audio,
already in the phone's format (µ-law 8 kHz), and its pacer task asks `next_chunk(now)` for
the next piece to send, or how long to wait:

* payloads are whole multiples of 160 bytes (20 ms): ragged payloads jitter at word starts
  (https://github.com/openai/openai-agents-python/issues/1906); a remainder is carried until
  the item's next audio arrives, and padded with µ-law silence (0xFF) only when the item ends
  (`finish_item`) or another item starts;
* Twilio queues whatever it is sent and plays it in order
  (https://www.twilio.com/docs/voice/media-streams/websocket-messages); we keep at most
  `max_lead_ms` in its queue, so a `clear` discards little and marks come back at a steady
  pace;
* a chunk never spans two items, so the mark sent after it maps to one item.

`drop()` forgets everything queued (barge-in) and bumps the generation; a chunk taken before
a drop carries the old generation and the session must not send its mark.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SILENCE_ULAW = 0xFF  # µ-law silence byte: decodes to 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """Audio to send now: `payload` is whole frames; `audio_bytes` of it are real audio."""

    item_id: str
    content_index: int
    payload: bytes
    audio_bytes: int
    generation: int


class _Segment:
    __slots__ = ("buf", "content_index", "finished", "item_id", "padded")

    def __init__(self, item_id: str, content_index: int) -> None:
        self.item_id = item_id
        self.content_index = content_index
        self.buf = bytearray()
        self.finished = False
        self.padded = 0  # silence bytes appended to complete the last frame


class OutboundAudio:
    """Frames and paces assistant audio for one phone stream."""

    def __init__(
        self,
        *,
        frame_bytes: int = 160,
        frame_ms: int = 20,
        max_lead_ms: int = 400,
        max_chunk_frames: int = 5,
        silence: int = SILENCE_ULAW,
    ) -> None:
        if frame_bytes <= 0 or frame_ms <= 0 or max_chunk_frames <= 0:
            raise ValueError("frame size, frame duration and chunk size must be positive")
        if max_lead_ms < frame_ms:
            raise ValueError(f"max_lead_ms must be at least one frame ({frame_ms} ms)")
        self.frame_bytes = frame_bytes
        self.frame_ms = frame_ms
        self.max_lead_ms = max_lead_ms
        self.max_chunk_frames = max_chunk_frames
        self._silence = bytes([silence])
        self._segments: deque[_Segment] = deque()
        self._queued = 0  # bytes in whole frames ready to send (all segments)
        self._playout_end = 0.0  # monotonic time when what we sent ends playing (estimate)
        self.generation = 0
        self.dropped_bytes = 0

    # --- input --------------------------------------------------------------------------
    def push(self, item_id: str, content_index: int, audio: bytes) -> None:
        """Queue assistant audio for an item. A new item finishes the previous one."""
        if not audio:
            return
        seg = self._segments[-1] if self._segments else None
        if (
            seg is None
            or seg.finished
            or (seg.item_id, seg.content_index)
            != (
                item_id,
                content_index,
            )
        ):
            if seg is not None and not seg.finished:
                self._finish(seg)
            seg = _Segment(item_id, content_index)
            self._segments.append(seg)
        before = len(seg.buf) // self.frame_bytes
        seg.buf += audio
        self._queued += (len(seg.buf) // self.frame_bytes - before) * self.frame_bytes

    def finish_item(self, item_id: str, content_index: int) -> None:
        """The item's audio is complete: pad its last partial frame with silence."""
        for seg in reversed(self._segments):
            if (seg.item_id, seg.content_index) == (item_id, content_index):
                if not seg.finished:
                    self._finish(seg)
                return

    def _finish(self, seg: _Segment) -> None:
        seg.finished = True
        rem = len(seg.buf) % self.frame_bytes
        if rem:
            seg.padded = self.frame_bytes - rem
            seg.buf += self._silence * seg.padded
            self._queued += self.frame_bytes

    # --- output -------------------------------------------------------------------------
    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be sent (whole frames plus any carried remainder)."""
        return sum(len(s.buf) for s in self._segments)

    @property
    def has_audio(self) -> bool:
        """True while any audio (even a partial frame) is waiting."""
        return any(s.buf for s in self._segments)

    def has_audio_besides(self, item_id: str) -> bool:
        """True while audio of any other item is waiting."""
        return any(s.buf and s.item_id != item_id for s in self._segments)

    def first_queued(self) -> tuple[str, int] | None:
        """(item_id, content_index) of the audio that would go next, if any."""
        for seg in self._segments:
            if seg.buf:
                return seg.item_id, seg.content_index
        return None

    def lead_ms(self, now: float) -> float:
        """How far the audio already sent runs ahead of real time."""
        # Rounded to 1 µs so float noise never costs a whole frame of room.
        return round(max(0.0, (self._playout_end - now) * 1000.0), 3)

    def delay(self, now: float) -> float | None:
        """Seconds to wait before the next chunk may go; 0 = now; None = nothing to send."""
        if self._queued == 0:
            return None
        # Wait for room for a whole chunk, not one frame: while the lead is full, sending
        # 20 ms at a time would cost a media and a mark message every 20 ms.
        frames = min(self._queued // self.frame_bytes, self.max_chunk_frames)
        room_needed = min(frames * self.frame_ms, self.max_lead_ms)
        over = self.lead_ms(now) + room_needed - self.max_lead_ms
        return over / 1000.0 if over > 0 else 0.0

    def next_chunk(self, now: float) -> Chunk | None:
        """Take the next chunk if one may be sent at `now`; the caller sends it, then a mark."""
        if self.delay(now) != 0.0:
            return None
        while self._segments and not self._segments[0].buf and self._segments[0].finished:
            self._segments.popleft()
        seg = self._segments[0]
        whole = len(seg.buf) // self.frame_bytes
        room = int((self.max_lead_ms - self.lead_ms(now)) // self.frame_ms)
        frames = max(1, min(whole, self.max_chunk_frames, room))
        n = frames * self.frame_bytes
        payload = bytes(seg.buf[:n])
        del seg.buf[:n]  # O(1) at the front of a bytearray in CPython
        self._queued -= n
        audio = n
        if seg.finished and not seg.buf:
            audio -= seg.padded
            self._segments.popleft()
        self._playout_end = max(self._playout_end, now) + frames * self.frame_ms / 1000.0
        return Chunk(seg.item_id, seg.content_index, payload, audio, self.generation)

    def drop(self, now: float) -> int:
        """Barge-in: forget everything queued, start a new generation. Returns bytes dropped."""
        dropped = self.queued_bytes
        self.dropped_bytes += dropped
        self._segments.clear()
        self._queued = 0
        self._playout_end = now  # Twilio's queue was cleared too
        self.generation += 1
        return dropped
