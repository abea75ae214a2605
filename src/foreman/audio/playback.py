"""Playback tracking: how much of each assistant audio item the listener actually heard.

Feeds `conversation.item.truncate` on barge-in. Position comes from the sink, never from the
wall clock (a wall-clock estimate overshoots whenever playback stalled, and the service rejects
a truncate past the item's audio): Twilio `mark` echoes (`sent` returns a mark to send after
each chunk; `acknowledged` credits its echo) or a speaker callback (`consumed`).

Rules (mark and clear semantics:
https://www.twilio.com/docs/voice/media-streams/websocket-messages):
* Marks echo in order once everything queued before them has played, so an echo credits its
  own position and settles every earlier outstanding mark as played.
* `clear` makes Twilio echo every pending mark at once: those echoes mean "dropped". `clear()`
  (and `interrupt()`) move all outstanding marks to a dropped set; their echoes are ignored.
* Heard never exceeds sent, per `(item_id, content_index)`.
* Mark names are unique and decodable: `<item_id>:<cumulative_ms_sent>:g<generation>:m<seq>`.

Sans-I/O: the session sends the returned marks and calls `acknowledged` with each echo.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from foreman.audio.formats import AudioFormat

__all__ = ["Mark", "MarkName", "PlaybackTracker", "Truncation", "parse_mark_name"]

_DROPPED_MEMORY: Final = 4096  # dropped mark names remembered until their echo arrives


@dataclass(frozen=True, slots=True)
class Mark:
    """A mark to send to the sink right after the chunk it follows."""

    name: str
    item_id: str
    content_index: int
    end_ms: float  # cumulative audio sent for (item_id, content_index) up to this mark
    generation: int


@dataclass(frozen=True, slots=True)
class Truncation:
    """Arguments for `conversation.item.truncate`."""

    item_id: str
    content_index: int
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class MarkName:
    item_id: str
    cumulative_ms: int
    generation: int
    seq: int


def parse_mark_name(name: str) -> MarkName | None:
    """Decode a name made by `PlaybackTracker.sent` (item ids may contain ':'); None if foreign."""
    parts = name.rsplit(":", 3)
    if len(parts) != 4 or not parts[2].startswith("g") or not parts[3].startswith("m"):
        return None
    try:
        return MarkName(parts[0], int(parts[1]), int(parts[2][1:]), int(parts[3][1:]))
    except ValueError:
        return None


class _Item:
    __slots__ = ("acked", "cap", "sent")

    def __init__(self) -> None:
        self.sent = 0  # bytes sent for the item
        self.acked = 0  # bytes settled by the sink (played, or dropped by a clear), <= sent
        # After a clear dropped part of the item, nothing past that point counts as heard even
        # if the session sends more of the same item (the listener has a gap there).
        self.cap: int | None = None

    @property
    def heard(self) -> int:
        return self.acked if self.cap is None else min(self.acked, self.cap)


_Key = tuple[str, int]


class PlaybackTracker:
    """Per call (one per sink). All sizes are bytes of `fmt` (µ-law: 8 bytes per ms)."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.fmt = fmt
        self._bps = fmt.bytes_per_second
        self.generation = 0
        self._seq = 0
        self._items: dict[_Key, _Item] = {}  # insertion order = order of first audio
        self._outstanding: OrderedDict[str, tuple[_Key, int]] = OrderedDict()
        self._dropped: OrderedDict[str, None] = OrderedDict()
        self.dropped_marks = 0  # marks that were outstanding when clear() ran
        self.ignored_acks = 0  # echoes of dropped or unknown marks
        self.dropped_acks = 0  # of those, echoes of marks dropped by clear()

    def _ms(self, nbytes: int) -> float:
        return nbytes * 1000 / self._bps

    def _item(self, key: _Key) -> _Item:
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = _Item()
        return item

    # sending -------------------------------------------------------------------------------
    def sent(self, item_id: str, content_index: int, nbytes: int) -> Mark:
        """Record `nbytes` just sent for the item; send the returned mark right after them."""
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        key = (item_id, content_index)
        item = self._item(key)
        item.sent += nbytes
        self._seq += 1
        end_ms = self._ms(item.sent)
        name = f"{item_id}:{int(end_ms)}:g{self.generation}:m{self._seq}"
        self._outstanding[name] = (key, item.sent)
        return Mark(name, item_id, content_index, end_ms, self.generation)

    # acknowledgements ----------------------------------------------------------------------
    def acknowledged(self, name: str) -> bool:
        """A mark echo from the sink. True if it credited playback; False (ignored) for names
        that are unknown, forgotten, or were outstanding when `clear()` ran (dropped audio)."""
        return self.acknowledge(name) is not None

    def acknowledge(self, name: str) -> tuple[str, int] | None:
        """Like `acknowledged`, returning the (item_id, content_index) the echo credited."""
        if name not in self._outstanding:
            self.ignored_acks += 1
            if self._dropped.pop(name, 0) is None:
                self.dropped_acks += 1  # an echo caused by clear: audio dropped, not played
            return None
        # Echoes come in order: every mark queued before this one has played too.
        while self._outstanding:
            mark_name, (key, upto) = self._outstanding.popitem(last=False)
            item = self._items.get(key)
            if item is not None and upto > item.acked:
                item.acked = min(upto, item.sent)
            if mark_name == name:
                return key
        return None  # pragma: no cover - the name was outstanding

    def consumed(self, item_id: str, content_index: int, nbytes: int) -> None:
        """A speaker-style sink played `nbytes` more of the item (clamped to what was sent)."""
        item = self._items.get((item_id, content_index))
        if item is None or nbytes <= 0:
            return
        item.acked = min(item.sent, item.acked + nbytes)

    # queries -------------------------------------------------------------------------------
    def heard_ms(self, item_id: str, content_index: int = 0) -> int:
        item = self._items.get((item_id, content_index))
        return 0 if item is None else int(self._ms(item.heard))

    def sent_ms(self, item_id: str, content_index: int = 0) -> int:
        item = self._items.get((item_id, content_index))
        return 0 if item is None else int(self._ms(item.sent))

    @property
    def playing(self) -> bool:
        """Some audio was sent and is neither acknowledged nor dropped by a clear."""
        return any(it.acked < it.sent for it in self._items.values())

    def playing_besides(self, item_id: str) -> bool:
        """Like `playing`, for every item other than `item_id`."""
        return any(it.acked < it.sent for key, it in self._items.items() if key[0] != item_id)

    @property
    def outstanding_marks(self) -> int:
        return len(self._outstanding)

    # barge-in ------------------------------------------------------------------------------
    def unfinished(self, slack_ms: float = 0.0) -> list[Truncation]:
        """Truncations for every item still playing: the first at what was heard (plus
        `slack_ms`, never past what was sent), later queued ones at 0 (none of them was
        heard)."""
        out: list[Truncation] = []
        for (item_id, ci), it in self._items.items():
            if it.acked >= it.sent:
                continue
            if not out:
                heard = min(it.sent, it.acked + int(slack_ms * self._bps / 1000))
                if it.cap is not None:
                    heard = min(heard, it.cap)
                out.append(Truncation(item_id, ci, int(self._ms(heard))))
            else:
                out.append(Truncation(item_id, ci, 0))
        return out

    def interrupt(self, slack_ms: float = 0.0) -> Truncation | None:
        """Barge-in: the truncation for the first unfinished item (None when everything sent
        was heard, or nothing was sent), then `clear()`. Send Twilio `clear` and the
        `conversation.item.truncate` it describes; see `unfinished` for later items."""
        pending = self.unfinished(slack_ms)
        self.clear()
        return pending[0] if pending else None

    def clear(self) -> int:
        """The sink dropped its queue: outstanding marks become dropped (their echoes will be
        ignored), unheard audio is written off, and the generation is bumped and returned."""
        for name in self._outstanding:
            self._dropped[name] = None
        self.dropped_marks += len(self._outstanding)
        self._outstanding.clear()
        while len(self._dropped) > _DROPPED_MEMORY:
            self._dropped.popitem(last=False)
        for it in self._items.values():
            if it.acked < it.sent:
                it.cap = it.acked if it.cap is None else min(it.cap, it.acked)
                it.acked = it.sent  # settled: dropped, not played
        self.generation += 1
        return self.generation

    def forget(self, item_id: str) -> None:
        """Drop all state for an item (after it finished playing or was truncated)."""
        for key in [k for k in self._items if k[0] == item_id]:
            del self._items[key]
        for name in [n for n, (k, _) in self._outstanding.items() if k[0] == item_id]:
            del self._outstanding[name]
