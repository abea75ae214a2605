"""`AudioBacklog`: the user's audio held while the model's socket is down, bounded.

Chunks stay base64 text as they came (the phone passthrough never decodes them); the bound
is in decoded bytes, i.e. seconds of the input format. Beyond it the oldest audio goes first
(the newest is what the user is saying now) and is counted, so status shows what was lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

__all__ = ["AudioBacklog"]


def _decoded_len(b64: str) -> int:
    return len(b64) * 3 // 4 - b64.count("=", -2)


class AudioBacklog:
    __slots__ = ("_chunks", "bytes", "dropped_bytes", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self._chunks: deque[tuple[str, int]] = deque()
        self.bytes = 0  # held now
        self.dropped_bytes = 0  # dropped for the bound, over the backlog's life

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def add(self, audio_b64: str) -> None:
        size = _decoded_len(audio_b64)
        self._chunks.append((audio_b64, size))
        self.bytes += size
        while self.bytes > self.max_bytes and self._chunks:
            _, old = self._chunks.popleft()
            self.bytes -= old
            self.dropped_bytes += old

    def drain(self) -> Iterator[str]:
        """Oldest first; chunks added while draining are drained too."""
        while self._chunks:
            chunk, size = self._chunks.popleft()
            self.bytes -= size
            yield chunk

    def clear(self) -> None:
        self._chunks.clear()
        self.bytes = 0
