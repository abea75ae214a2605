"""Twilio's outbound playback queue, emulated for the fake caller
(https://www.twilio.com/docs/voice/media-streams/websocket-messages: media, mark, clear).

Server `media` payloads queue up and "play" at 8 kHz, 160 bytes per 20 ms, on their own task,
against a monotonic schedule anchored when playback starts from idle (a late event loop does
not stretch playback: the schedule catches up, as Twilio's own clock would).

* A `mark` is echoed once all audio queued before it has played; at once if nothing is queued.
* `clear` drops all queued audio at once (the 20 ms frame being played included) and echoes
  every pending mark at once; those echoes mean "dropped", not "played".
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

FRAME = 160  # bytes of µ-law per 20 ms
BYTES_PER_S = 8000

EchoMark = Callable[[str, bool], Awaitable[None]]  # (name, dropped_by_clear)
Notify = Callable[[], Awaitable[None]]


class TwilioPlayback:
    """Call `add_audio` / `add_mark` / `clear` as server messages arrive; run `run()` as a
    task. `echo(name, dropped)` sends the mark back; `notify()` runs after each played frame."""

    def __init__(self, echo: EchoMark, notify: Notify) -> None:
        self.played = bytearray()
        self.dropped_bytes = 0
        self.clears = 0
        self._echo = echo
        self._notify = notify
        self._queue: deque[bytes | str] = deque()  # audio chunks and mark names, in order
        self._offset = 0  # bytes of the head chunk already taken
        self._queued_bytes = 0
        self._inflight_marks: list[str] | None = None  # marks right after the frame playing
        self._inflight_bytes = 0
        self._epoch = 0  # bumped by clear, so the frame being played is dropped
        self._wake = asyncio.Event()

    @property
    def queued_bytes(self) -> int:
        """Audio received and not yet played (the frame being played excluded)."""
        return self._queued_bytes

    @property
    def playing(self) -> bool:
        """Audio is queued or a frame is being played."""
        return self._queued_bytes > 0 or self._inflight_bytes > 0

    def add_audio(self, audio: bytes) -> None:
        if audio:
            self._queue.append(audio)
            self._queued_bytes += len(audio)
            self._wake.set()

    async def add_mark(self, name: str) -> None:
        if self._queued_bytes > 0:
            self._queue.append(name)
        elif self._inflight_marks is not None:
            self._inflight_marks.append(name)
        else:
            await self._echo(name, False)

    async def clear(self) -> None:
        self.clears += 1
        pending = list(self._inflight_marks or [])
        pending += [item for item in self._queue if isinstance(item, str)]
        self.dropped_bytes += self._queued_bytes + self._inflight_bytes
        self._queue.clear()
        self._offset = 0
        self._queued_bytes = 0
        self._inflight_marks = None
        self._inflight_bytes = 0
        self._epoch += 1
        for name in pending:
            await self._echo(name, True)

    async def run(self) -> None:
        """The playback clock. Runs until cancelled."""
        loop = asyncio.get_running_loop()
        next_t: float | None = None
        while True:
            if self._queued_bytes == 0:
                self._wake.clear()
                await self._wake.wait()
                next_t = None
                continue
            if next_t is None:
                next_t = loop.time()
            epoch = self._epoch
            frame, marks = self._take_frame()
            self._inflight_marks = marks
            self._inflight_bytes = len(frame)
            end = next_t + len(frame) / BYTES_PER_S
            delay = end - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if epoch != self._epoch:  # a clear dropped this frame and echoed its marks
                next_t = None
                continue
            self._inflight_marks = None
            self._inflight_bytes = 0
            self.played += frame
            next_t = end
            for name in marks:
                await self._echo(name, False)
            await self._notify()

    def _take_frame(self) -> tuple[bytes, list[str]]:
        """Up to 20 ms of queued audio, and the marks right after it."""
        frame = bytearray()
        marks: list[str] = []
        while self._queue:
            head = self._queue[0]
            if isinstance(head, str):
                marks.append(head)
                self._queue.popleft()
                continue
            if len(frame) >= FRAME:
                break
            piece = head[self._offset : self._offset + FRAME - len(frame)]
            frame += piece
            self._offset += len(piece)
            if self._offset >= len(head):
                self._queue.popleft()
                self._offset = 0
        self._queued_bytes -= len(frame)
        return bytes(frame), marks
