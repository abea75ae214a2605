"""The assistant's side of a phone call: audio towards the caller, and what the caller heard.

`Playback` is bookkeeping only (no awaits, time passed in): it converts model audio to µ-law,
frames and paces it (`OutboundAudio`), tracks marks (`PlaybackTracker`) and decides what a
barge-in must do. `CallSession` owns the sockets: its pacer sends the chunks this class hands
out, and on `speech_started` it sends `clear` and the interruption `interrupt()` returns.
Reference twilio-media-streams.md §2.4-2.5 and §4.4; openai-realtime.md §5.2.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from foreman.audio.convert import build_plan
from foreman.audio.formats import PCMU_8K, AudioFormat
from foreman.audio.playback import Mark, PlaybackTracker
from foreman.backends.base import AudioDone, AudioOut
from foreman.session.outbound import Chunk, OutboundAudio

_Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Interruption:
    """What a barge-in sends to the backend: truncate `item_id` at `heard_ms` (None: no
    truncate) and, if `cancel`, stop the response that is still streaming."""

    item_id: str | None
    heard_ms: int | None
    cancel: bool


class Playback:
    """Per call. Feed it the backend's audio events and Twilio's mark echoes."""

    def __init__(
        self, model_format: AudioFormat, *, max_lead_ms: int, max_chunk_frames: int
    ) -> None:
        self.model_format = model_format
        self.out = OutboundAudio(max_lead_ms=max_lead_ms, max_chunk_frames=max_chunk_frames)
        self.tracker = PlaybackTracker(PCMU_8K)
        self._plan = build_plan(model_format, PCMU_8K)
        self._converting: _Key | None = None  # item the converter is working on
        self._sent_items: dict[_Key, None] = {}  # items with audio sent, in order
        self.active_responses: set[str] = set()
        self._discarded_responses: set[str] = set()
        self._discarded_items: deque[str] = deque(maxlen=32)
        self._item_response: dict[str, str] = {}
        self._received: dict[_Key, int] = {}  # model bytes per item, for the clamp
        self.late_audio_dropped = 0

    # --- model -> caller ----------------------------------------------------------------
    def audio(self, ev: AudioOut) -> bool:
        """Queue model audio; False when it is late audio of an interrupted response."""
        if ev.response_id in self._discarded_responses or ev.item_id in self._discarded_items:
            self.late_audio_dropped += 1  # §6.4 scenario 4
            return False
        key = (ev.item_id, ev.content_index)
        self._item_response[ev.item_id] = ev.response_id
        self._received[key] = self._received.get(key, 0) + len(ev.audio)
        audio = ev.audio
        if not self._plan.is_passthrough:
            if self._converting != key:
                self._flush_converter()
                self._converting = key
            audio = self._plan.convert(audio)
        self.out.push(ev.item_id, ev.content_index, audio)
        return True

    def audio_done(self, ev: AudioDone) -> None:
        """The item is complete: flush the converter, pad its last frame."""
        if ev.response_id in self._discarded_responses:
            return
        if (ev.item_id, ev.content_index) == self._converting:
            self._flush_converter()
        self.out.finish_item(ev.item_id, ev.content_index)

    def _flush_converter(self) -> None:
        if self._converting is None:
            return
        tail = self._plan.flush()
        if tail:
            self.out.push(*self._converting, tail)
        self._plan.reset()
        self._converting = None

    def response_started(self, response_id: str) -> None:
        self.active_responses.add(response_id)

    def response_done(self, response_id: str) -> None:
        self.active_responses.discard(response_id)
        self._discarded_responses.discard(response_id)  # no more deltas can follow done
        for item in [i for i, r in self._item_response.items() if r == response_id]:
            del self._item_response[item]

    # --- pacing and marks ---------------------------------------------------------------
    def next_chunk(self, now: float) -> Chunk | None:
        return self.out.next_chunk(now)

    def chunk_sent(self, chunk: Chunk) -> Mark | None:
        """The chunk's media went out: the mark to send after it, or None when a barge-in
        cleared it meanwhile (its audio was dropped; no mark may claim it)."""
        if chunk.generation != self.out.generation:
            return None
        key = (chunk.item_id, chunk.content_index)
        self._sent_items[key] = None
        return self.tracker.sent(key[0], key[1], chunk.audio_bytes)

    def mark_echo(self, name: str) -> bool:
        """Twilio echoed a mark: True if it counted as played (False: dropped by a clear)."""
        if not self.tracker.acknowledged(name):
            return False
        if not self.tracker.playing:
            self._forget_played()
        return True

    def _forget_played(self) -> None:
        """Everything sent has played: forget finished items so state stays per-turn."""
        keep = self.out.first_queued()
        for key in list(self._sent_items):
            if keep is None or key[0] != keep[0]:
                self.tracker.forget(key[0])
                self._received.pop(key, None)
                del self._sent_items[key]

    @property
    def idle(self) -> bool:
        """No response streaming, nothing queued, every mark echoed (the goodbye is over)."""
        return not self.active_responses and not self.out.has_audio and not self.tracker.playing

    # --- barge-in -----------------------------------------------------------------------
    def interrupt(self, now: float) -> Interruption | None:
        """The caller talks over the assistant. None when nothing is queued or playing (no
        clear, no truncate, no cancel: §6.4 scenarios 5-6). Otherwise the queue is dropped
        (new generation), outstanding marks count as dropped, late audio of the interrupted
        responses will be discarded, and the caller must send `clear` now, then interrupt
        the backend with the returned values."""
        if not self.tracker.playing and not self.out.has_audio:
            return None
        queued = self.out.first_queued()
        trunc = self.tracker.interrupt()  # also clears: outstanding marks -> dropped
        self.out.drop(now)
        self._plan.reset()
        self._converting = None
        cancel = bool(self.active_responses)
        self._discarded_responses.update(self.active_responses)
        self._discarded_items.extend(self._item_response)
        if trunc is not None:
            received = self._received.get((trunc.item_id, trunc.content_index), 0)
            received_ms = int(self.model_format.ms_for_bytes(received))
            return Interruption(trunc.item_id, max(0, min(trunc.audio_end_ms, received_ms)), cancel)
        if queued is not None:
            # Everything sent has played and the rest was still queued here: cut the item at
            # what its echoed marks confirm (0 when none of it was sent).
            return Interruption(queued[0], int(self.tracker.heard_ms(*queued)), cancel)
        return Interruption(None, None, cancel)

    def release(self, now: float) -> None:
        """The call is over: drop every buffer."""
        self.out.drop(now)
        self.tracker.clear()
        self._sent_items.clear()
        self._received.clear()
        self._item_response.clear()
        self.active_responses.clear()
