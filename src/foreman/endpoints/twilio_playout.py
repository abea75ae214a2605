"""The assistant's audio on its way to a phone caller, and what the caller really heard.

`TwilioPlayout` is bookkeeping only (no awaits, time passed in): it converts the model's
audio to 8 kHz µ-law, frames and paces it (`OutboundAudio`), and tracks Twilio marks
(`PlaybackTracker`): a mark follows every chunk, and its echo means the audio before it has
played, so a barge-in cuts the segment at a position the caller confirmed. The Twilio
endpoint owns the socket: its pacer sends the chunks handed out here, and on a barge-in it
sends `clear` and reports what `flush()` returns.
Twilio's mark and clear semantics: https://www.twilio.com/docs/voice/media-streams/websocket-messages
"""

from __future__ import annotations

from foreman.audio.convert import Converter, build_plan
from foreman.audio.formats import PCMU_8K, AudioFormat
from foreman.audio.pacing import Chunk, OutboundAudio
from foreman.audio.playback import Mark, PlaybackTracker

# Filler: a continuous backend's audio between replies (segment ""). It is played like any
# other audio, but it never keeps the call "playing" and is never where a barge-in cuts: a
# goodbye is over when its own audio has been heard, though the track goes on with silence.
FILLER = ""


class TwilioPlayout:
    """Per call. Feed it the assistant's audio by segment and Twilio's mark echoes."""

    def __init__(
        self, *, max_lead_ms: int, max_chunk_frames: int, max_queued_ms: int = 180_000
    ) -> None:
        self.out = OutboundAudio(max_lead_ms=max_lead_ms, max_chunk_frames=max_chunk_frames)
        # The model makes audio faster than it plays; what waits here is bounded, and audio
        # past the bound is dropped (and counted): the caller hears the reply cut short, and
        # nothing dropped can ever be reported as heard.
        self.max_queued_bytes = PCMU_8K.bytes_for_ms(max_queued_ms)
        self.overflow_bytes = 0
        self.tracker = PlaybackTracker(PCMU_8K)
        self.model_format: AudioFormat = PCMU_8K
        self._plan: Converter = build_plan(PCMU_8K, PCMU_8K)
        self._converting: str | None = None  # segment the converter is working on
        self._sent: dict[str, None] = {}  # segments sent (or cut), forgotten once played
        self._received: dict[str, int] = {}  # model bytes per segment, for the clamp
        self._open: str | None = None  # the segment still receiving audio (not ended)
        self._in_flight: Chunk | None = None  # handed to the pacer, not yet reported sent

    def set_model_format(self, fmt: AudioFormat) -> None:
        """µ-law from the model passes through untouched; anything else is converted."""
        self.model_format = fmt
        self._plan = build_plan(fmt, PCMU_8K)

    # --- model -> caller ----------------------------------------------------------------
    def audio(self, segment: str, audio: bytes) -> None:
        """Queue model audio of `segment` (converted to µ-law if needed)."""
        self._received[segment] = self._received.get(segment, 0) + len(audio)
        if segment != FILLER:
            self._open = segment
        if not self._plan.is_passthrough:
            if self._converting != segment:
                self._flush_converter()
                self._converting = segment
            audio = self._plan.convert(audio)
        room = self.max_queued_bytes - self.out.queued_bytes
        if len(audio) > room:
            self.overflow_bytes += len(audio) - max(0, room)
            audio = audio[: max(0, room)]
        self.out.push(segment, 0, audio)

    def clip(self, segment: str, ulaw: bytes) -> None:
        """Queue a whole pre-rendered clip, already 8 kHz µ-law (no conversion), as one
        finished segment."""
        self._received[segment] = self._received.get(segment, 0) + len(ulaw)
        self.out.push(segment, 0, ulaw)
        self.out.finish_item(segment, 0)

    def end_segment(self, segment: str) -> None:
        """The segment is complete: flush the converter, pad its last frame."""
        if segment == self._converting:
            self._flush_converter()
        if segment == self._open:
            self._open = None
        self.out.finish_item(segment, 0)

    def _flush_converter(self) -> None:
        if self._converting is None:
            return
        tail = self._plan.flush()
        if tail:
            self.out.push(self._converting, 0, tail)
        self._plan.reset()
        self._converting = None

    # --- pacing and marks ---------------------------------------------------------------
    def delay(self, now: float) -> float | None:
        """Seconds until the next chunk may go; 0 = now; None = nothing to send."""
        return self.out.delay(now)

    def next_chunk(self, now: float) -> Chunk | None:
        """The next chunk to send now, if any; report it with `chunk_sent` once it went."""
        chunk = self.out.next_chunk(now)
        if chunk is not None:
            self._in_flight = chunk
        return chunk

    def chunk_sent(self, chunk: Chunk) -> Mark | None:
        """The chunk's media went out: the mark to send after it, or None when a flush
        dropped it meanwhile (its audio was discarded; no mark may claim it)."""
        if chunk is self._in_flight:
            self._in_flight = None
        if chunk.generation != self.out.generation:
            return None
        self._sent[chunk.item_id] = None
        return self.tracker.sent(chunk.item_id, 0, chunk.audio_bytes)

    def mark_echo(self, name: str) -> tuple[str, int] | None:
        """Twilio echoed a mark: (segment, ms heard of it) when it counted as played; None
        for an echo caused by a clear, or a name that is not ours."""
        key = self.tracker.acknowledge(name)
        if key is None:
            return None
        heard = (key[0], self.tracker.heard_ms(key[0]))
        if not self.tracker.playing_besides(FILLER):
            self._forget_played()
        return heard

    def _forget_played(self) -> None:
        """Everything sent has played: forget finished segments so state stays bounded. A
        segment still streaming is not finished, even if playback caught up with it."""
        queued = self.out.first_queued()
        keep = {self._open, queued[0] if queued else None}
        for segment in list(self._sent):
            if segment not in keep and segment != FILLER:
                self._forget(segment)

    def _forget(self, segment: str) -> None:
        self.tracker.forget(segment)
        self._received.pop(segment, None)
        self._sent.pop(segment, None)

    @property
    def playing(self) -> bool:
        """Audio (other than filler) is queued, or sent and not yet echoed."""
        return self.out.has_audio_besides(FILLER) or self.tracker.playing_besides(FILLER)

    # --- barge-in -----------------------------------------------------------------------
    def flush(self, now: float) -> tuple[str, int] | None:
        """Drop everything queued (a new generation; outstanding marks count as dropped)
        and say where playback stopped: (segment, ms heard), clamped to what the model
        sent; None when nothing was queued or playing. The caller sends `clear` now.

        A segment that is still streaming counts as playing even while playback has caught
        up with it (or its first audio is still in the converter): the assistant is mid-reply.
        """
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None and in_flight.item_id == FILLER:
            in_flight = None
        if not self.playing and in_flight is None and self._open is None:
            return None
        queued = self.out.first_queued()
        if queued is not None and queued[0] == FILLER:
            queued = None
        # Playback is in order: if filler before a segment is unfinished, that segment was
        # not heard at all, which is what `unfinished` says of every item after the first.
        cut = [t for t in self.tracker.unfinished() if t.item_id != FILLER]
        trunc = cut[0] if cut else None
        self.tracker.clear()
        self.out.drop(now)
        self._plan.reset()
        self._converting = None
        if trunc is not None:
            segment, heard_ms = trunc.item_id, trunc.audio_end_ms
        else:
            # Everything sent has played: the cut is in the first segment not yet (wholly)
            # sent, at what its echoed marks confirm (0 when none of it was sent).
            candidates = (
                in_flight.item_id if in_flight is not None else None,
                queued[0] if queued is not None else None,
                self._open,
            )
            segment = next((s for s in candidates if s is not None), FILLER)
            heard_ms = self.tracker.heard_ms(segment)
        if segment == FILLER:  # only filler was playing: nobody's words to cut
            self._open = None
            return None
        received_ms = int(self.model_format.ms_for_bytes(self._received.get(segment, 0)))
        # Only the cut segment's state is kept (nothing later of it may count as heard),
        # until the next audio has played; everything else was played or dropped.
        self._open = None
        for other in {*self._sent, *self._received} - {segment}:
            self._forget(other)
        self._sent = {segment: None}
        return segment, max(0, min(heard_ms, received_ms))

    def release(self, now: float) -> None:
        """The call is over: drop every buffer."""
        self.out.drop(now)
        self.tracker.clear()
        self._sent.clear()
        self._received.clear()
        self._open = self._in_flight = None
