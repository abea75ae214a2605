"""A phone call's media stream (Twilio Media Streams) as an `AudioEndpoint`.

The reader turns WebSocket frames into endpoint events through the sans-I/O
`TwilioStream`; the pacer sends the assistant's audio in whole 20 ms frames, at most
`max_lead_ms` ahead of real time, with a mark after each chunk; mark echoes say what the
caller has heard. A barge-in sends `clear` straight to the socket (never behind queued
audio). Hanging up goes through Twilio REST (`Status=completed`): closing the socket alone
does not reliably end a call.
Protocol: https://www.twilio.com/docs/voice/media-streams/websocket-messages
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from foreman.audio.formats import PCMU_8K, AudioFormat
from foreman.clock import Clock, SystemClock
from foreman.endpoints.interface import (
    Drained,
    Dtmf,
    EndpointEvent,
    Heard,
    HungUp,
    InputGap,
    UserSide,
)
from foreman.endpoints.twilio_playout import FILLER, TwilioPlayout
from foreman.exceptions import ConversationEnded, InvalidState, SessionClosed
from foreman.protocols.twilio.messages import BadMessage, MarkEcho, Media, Start, Stop
from foreman.protocols.twilio.messages import Dtmf as TwilioDtmf
from foreman.protocols.twilio.stream import TwilioStream

log = logging.getLogger("foreman.call")

MAX_BAD_MESSAGES: Final = 200  # garbage is ignored, but a flood of it ends the call
MAX_GAP_FILL_MS: Final = 10_000  # a stall longer than this is not worth replaying as silence
CLIP_SEGMENT: Final = "clip"  # a pre-rendered clip's segment; model segments are item ids
HEARD_MARGIN_S: Final = 3.0  # beyond a clip's own length: Twilio's buffer and mark echo


def clip_limit_s(ulaw: bytes) -> float:
    """How long to wait for a clip (8 kHz µ-law) to be heard before giving up on it."""
    return PCMU_8K.ms_for_bytes(len(ulaw)) / 1000 + HEARD_MARGIN_S


class TwilioTransport(Protocol):
    """The media WebSocket as the endpoint sees it (FastAPI adapter; in memory in tests)."""

    async def receive(self) -> str | bytes | None:
        """The next frame; None once the socket is closed."""
        ...

    async def send_text(self, text: str) -> None:
        """Raises SessionClosed once the socket is gone."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close; idempotent, never raises."""
        ...


class Hangup(Protocol):
    """Twilio REST as the endpoint uses it (foreman.io.twilio_rest.TwilioRest)."""

    async def hangup(self, call_sid: str) -> bool: ...


@dataclass
class PhoneStats:
    media_in: int = 0
    frames_out: int = 0
    marks_sent: int = 0
    marks_played: int = 0
    marks_dropped: int = 0
    bad_messages: int = 0
    clears: int = 0
    dtmf: int = 0
    gap_filled_ms: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "counters"}
        return out


async def _deliver(
    deliver: Callable[[EndpointEvent], Awaitable[None] | None], event: EndpointEvent
) -> None:
    res = deliver(event)
    if res is not None:
        await res


class TwilioEndpoint:
    """One call's media stream, after its `start` was read and admitted."""

    kind = "phone"
    input_format: AudioFormat | None = PCMU_8K

    def __init__(
        self,
        stream: TwilioStream,
        transport: TwilioTransport,
        *,
        call_sid: str,
        rest: Hangup | None = None,
        max_lead_ms: int = 400,
        max_chunk_ms: int = 100,
        max_queued_ms: int = 180_000,
        clock: Clock | None = None,
        farewell: bytes = b"",
    ) -> None:
        """`farewell`: 8 kHz µ-law the caller hears when the model is gone for good mid-call
        (`apologize`); empty: nothing is said."""
        self.call_sid = call_sid
        self._farewell = farewell
        self._stream = stream
        self._transport = transport
        self._rest = rest
        self._clock = clock or SystemClock()
        # One mark per chunk: truncation is exact to within one chunk.
        self._playout = TwilioPlayout(
            max_lead_ms=max_lead_ms,
            max_chunk_frames=max(1, max_chunk_ms // 20),
            max_queued_ms=max_queued_ms,
        )
        self._wake = asyncio.Event()  # pacer: audio was queued
        self.stats = PhoneStats()
        self._hung_up = False  # on purpose: nothing more is sent to the caller
        self._hanging_up: asyncio.Future[None] | None = None
        self._hang_up_reason = ""  # ours, when we hung up: the stop that follows is its echo
        self._clip_heard: asyncio.Event | None = None  # set while a clip plays (play_clip)
        self._handlers: dict[type, Callable[[Any], EndpointEvent | None]] = {
            MarkEcho: self._on_mark,
            TwilioDtmf: self._on_dtmf,
            BadMessage: self._on_bad,
            Start: lambda _: self._bad("second start message"),
        }

    def set_output_format(self, fmt: AudioFormat) -> None:
        self._playout.set_model_format(fmt)

    async def run(self, tg: asyncio.TaskGroup, user: UserSide) -> None:
        tg.create_task(self._read(user), name=f"twilio<{self.call_sid}")
        tg.create_task(self._pace(), name=f"pacer>{self.call_sid}")

    # --- caller -> session --------------------------------------------------------------
    async def _read(self, user: UserSide) -> None:
        receive = self._transport.receive
        handlers = self._handlers
        audio_b64 = user.audio_b64
        deliver = user.event
        while True:
            frame = await receive()
            if frame is None:
                self._stream.connection_lost()
                reason = self._hang_up_reason or "caller hung up (socket closed)"
                await _deliver(deliver, HungUp(reason))
                return
            for event in self._stream.receive(frame):
                if type(event) is Media:  # the hot path: one check, no dict lookup
                    self.stats.media_in += 1
                    if event.gap_ms > 0:
                        gap = min(event.gap_ms, MAX_GAP_FILL_MS)
                        self.stats.gap_filled_ms += gap
                        await _deliver(deliver, InputGap(gap))
                    await audio_b64(event.payload_b64)
                elif type(event) is Stop:
                    await _deliver(deliver, HungUp(self._hang_up_reason or "caller hung up"))
                    return
                else:
                    handler = handlers.get(type(event))
                    out = handler(event) if handler is not None else None
                    if out is not None:
                        await _deliver(deliver, out)
                        if type(out) is Heard and not self._playout.playing:
                            await _deliver(deliver, Drained())

    def _on_mark(self, ev: MarkEcho) -> EndpointEvent | None:
        heard = self._playout.mark_echo(ev.name)
        if heard is None:
            self.stats.marks_dropped += 1  # echoed because of a clear, or not ours
            return Drained() if not self._playout.playing else None
        self.stats.marks_played += 1
        if self._clip_heard is not None and not self._playout.playing:
            self._clip_heard.set()
        if heard[0] == FILLER:  # nobody's words: nothing to report but the state
            return Drained() if not self._playout.playing else None
        return Heard(*heard)

    def _on_dtmf(self, ev: TwilioDtmf) -> EndpointEvent:
        self.stats.dtmf += 1
        return Dtmf(ev.digit)

    def _on_bad(self, ev: BadMessage) -> None:
        self._bad(ev.reason)

    def _bad(self, reason: str) -> None:
        self.stats.bad_messages += 1
        if self.stats.bad_messages == 1:
            log.warning("%s: bad message ignored: %s", self.call_sid, reason)
        if self.stats.bad_messages > MAX_BAD_MESSAGES:
            raise ConversationEnded(f"too many bad messages from Twilio (last: {reason})")

    # --- session -> caller --------------------------------------------------------------
    def play(self, segment: str, audio: bytes) -> None:
        if self._clip_heard is not None or self._hung_up:
            # A closing clip plays, or the call was hung up on purpose: the model's audio no
            # longer reaches the caller. A continuous track (GPT-Live) keeps coming until
            # the session ends, and media sent after Twilio's `stop` is a protocol violation.
            return
        playout = self._playout
        overflow = playout.overflow_bytes
        playout.audio(segment, audio)
        if playout.overflow_bytes != overflow and not overflow:  # said once per call
            log.warning(
                "> call %s: more than %d s of assistant audio waiting; the rest is dropped",
                self.call_sid,
                playout.max_queued_bytes // 8000,
            )
        self._wake.set()

    def end_segment(self, segment: str) -> None:
        if self._clip_heard is not None:
            return
        self._playout.end_segment(segment)
        self._wake.set()

    async def flush(self) -> Heard | None:
        # Bookkeeping first, with no await: what was heard is fixed at this instant.
        cut = self._playout.flush(self._clock.monotonic())
        if cut is None:
            return None
        self.stats.clears += 1
        await self._send(self._stream.clear)
        return Heard(*cut)

    @property
    def playing(self) -> bool:
        return self._playout.playing

    async def play_clip(self, ulaw: bytes) -> None:
        """Play a pre-rendered clip (8 kHz µ-law) in place of the model, which is not heard
        again on this call: what it was saying is cleared, its later audio is dropped.
        Returns once Twilio's marks say the caller has heard the whole clip; the endpoint
        must be running (`run`). Bound the wait: a caller that hangs up never echoes."""
        heard = self._clip_heard = asyncio.Event()
        await self.flush()
        self._playout.clip(CLIP_SEGMENT, ulaw)
        self._wake.set()
        await heard.wait()

    async def apologize(self) -> None:
        if not self._farewell or self._hung_up:
            return
        try:
            async with asyncio.timeout(clip_limit_s(self._farewell)):
                await self.play_clip(self._farewell)
        except (TimeoutError, ConversationEnded):  # not heard: the hang-up follows anyway
            log.info("%s: the caller did not hear the whole farewell", self.call_sid)

    async def _pace(self) -> None:
        playout = self._playout
        clock = self._clock
        stream = self._stream
        frame_bytes = playout.out.frame_bytes
        while True:
            delay = playout.delay(clock.monotonic())
            if delay is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if self._hung_up:  # see play(): what is still queued is not sent either
                self._wake.clear()
                await self._wake.wait()
                continue
            chunk = playout.next_chunk(clock.monotonic())
            if chunk is None:
                continue
            await self._send(stream.media_bytes, chunk.payload)
            self.stats.frames_out += len(chunk.payload) // frame_bytes
            mark = playout.chunk_sent(chunk)
            if mark is None:
                continue  # a barge-in dropped this audio while it was being sent
            await self._send(stream.mark, mark.name)
            self.stats.marks_sent += 1

    async def _send(self, frame: Callable[..., str], *args: Any) -> None:
        """Build a frame with the stream (which refuses once the caller has stopped) and
        send it."""
        try:
            await self._transport.send_text(frame(*args))
        except (SessionClosed, InvalidState):
            # The caller hung up while audio was going out: an ordinary end of call, which
            # the reader reports with its reason.
            raise ConversationEnded("caller hung up") from None

    # --- ending -------------------------------------------------------------------------
    async def hang_up(self, reason: str) -> None:
        """Hang up through REST, then close the socket. Every call waits for the one
        hang-up (a second caller, e.g. shutdown after a goodbye, must not end the session
        while the first is still talking to Twilio: that would cancel it)."""
        if self._hanging_up is None:
            self._hung_up = True
            self._hang_up_reason = reason
            self._hanging_up = asyncio.ensure_future(self._hang_up())
        await asyncio.shield(self._hanging_up)

    async def _hang_up(self) -> None:
        if self._rest is None:
            log.debug("%s: no Twilio REST client; closing the stream only", self.call_sid)
        else:
            try:
                await self._rest.hangup(self.call_sid)
            except Exception as exc:  # the stream is closed anyway; Twilio then ends the call
                log.warning("%s: REST hang-up failed: %r", self.call_sid, exc)
        await self._transport.close(1000, "call ended")

    async def close(self) -> None:
        self._playout.release(self._clock.monotonic())
        await self._transport.close(1000, "call ended")

    def status(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "stream_sid": self._stream.stream_sid,
            **self.stats.as_dict(),
            "queued_ms": self._playout.out.queued_bytes // 8,
            "overflow_dropped_ms": self._playout.overflow_bytes // 8,
        }
