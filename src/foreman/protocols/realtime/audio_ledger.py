"""How much assistant audio arrived per (item_id, content_index), for truncation on barge-in.

`conversation.item.truncate` fails when `audio_end_ms` exceeds the item's audio, so the
session clamps what the playback side says was heard to what actually arrived, and to any
earlier truncation of the same item (the item is already that short).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from foreman.audio.formats import AudioFormat

__all__ = ["AudioLedger", "b64_decoded_len"]

_MAX_ITEMS = 256  # assistant items remembered; only the last few can still be playing


def b64_decoded_len(b64: str) -> int:
    """Bytes encoded by a padded base64 string, without decoding it."""
    n = len(b64)
    if n == 0:
        return 0
    pad = 2 if b64.endswith("==") else 1 if b64.endswith("=") else 0
    return n * 3 // 4 - pad


@dataclass(slots=True)
class _Entry:
    nbytes: int
    fmt: AudioFormat
    truncated_ms: int | None = None


class AudioLedger:
    """Bytes of output audio received per (item_id, content_index), in their format."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()

    def add(self, item_id: str, content_index: int, nbytes: int, fmt: AudioFormat) -> None:
        key = (item_id, content_index)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(nbytes, fmt)
            if len(self._entries) > _MAX_ITEMS:
                self._entries.popitem(last=False)
        else:
            entry.nbytes += nbytes

    def received_ms(self, item_id: str, content_index: int = 0) -> int:
        """Milliseconds of audio received (PCM16 24 kHz: bytes/48; G.711: bytes/8)."""
        entry = self._entries.get((item_id, content_index))
        if entry is None:
            return 0
        return entry.nbytes * 1000 // entry.fmt.bytes_per_second

    def limit_ms(self, item_id: str, content_index: int = 0) -> int | None:
        """The most a truncate may claim for this item, or None if the item is unknown."""
        entry = self._entries.get((item_id, content_index))
        if entry is None:
            return None
        received = entry.nbytes * 1000 // entry.fmt.bytes_per_second
        return received if entry.truncated_ms is None else min(received, entry.truncated_ms)

    def truncated(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """The item was cut to `audio_end_ms`; later truncates must not claim more."""
        entry = self._entries.get((item_id, content_index))
        if entry is not None:
            previous = entry.truncated_ms
            entry.truncated_ms = audio_end_ms if previous is None else min(previous, audio_end_ms)

    def forget(self, item_id: str) -> None:
        for key in [k for k in self._entries if k[0] == item_id]:
            del self._entries[key]
