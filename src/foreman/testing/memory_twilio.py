"""An in-memory Twilio media socket for `CallSession` tests (no sockets, no clock).

It is both ends at once: the test feeds Twilio's messages (`start`, `media`, `dtmf`,
`stop`, raw garbage) and reads what the session sent (`sent`, `media_payload`, `marks`,
`clears`). It also keeps Twilio's playback queue the way
https://www.twilio.com/docs/voice/media-streams/websocket-messages describes: `play(ms)` plays
queued audio and echoes each mark the playback reaches; a `clear` drops queued audio and echoes
every pending mark at once.

Frames both ways go through the Twilio side of the protocol module
(`foreman.protocols.twilio.caller_frames`): one definition of the wire shape. Unlike
`TwilioCallerStream` it keeps no phases, so a test can send media before `start` or a mark
nobody asked for; what the session sends is judged the way Twilio judges it, and anything
Twilio would refuse is kept in `rejected`.
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from collections.abc import Callable
from typing import Any

from foreman.protocols.twilio.caller_frames import (
    dtmf_frame,
    json_string,
    mark_frame,
    media_frame,
    parse_server_frame,
    start_frame,
    stop_frame,
)
from foreman.protocols.twilio.messages import Rejected, ServerClear, ServerMark, ServerMedia

BYTES_PER_MS = 8
ACCOUNT_SID = "AC" + "0" * 32


def twilio_start(
    stream_sid: str = "MZ" + "0" * 32,
    call_sid: str = "CA" + "0" * 32,
    parameters: dict[str, str] | None = None,
) -> str:
    return start_frame(
        1,
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=ACCOUNT_SID,
        custom_parameters=parameters,
    )


class MemoryTwilio:
    """A `TwilioTransport` for tests, with Twilio's mark/clear behaviour."""

    def __init__(self, stream_sid: str = "MZ" + "0" * 32, *, echo_on_clear: bool = True) -> None:
        self.stream_sid = stream_sid
        self.echo_on_clear = echo_on_clear
        self.sent: list[dict[str, Any]] = []
        self.raw_sent: list[str] = []
        self.rejected: list[Rejected] = []  # what the session sent that Twilio would refuse
        self.closed: tuple[int, str] | None = None
        self._incoming: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._playq: deque[tuple[str, Any]] = deque()  # ("media", bytearray) | ("mark", name)
        self._changed = asyncio.Condition()
        self._seq = 1  # `start` was 1
        self._sid_json = json_string(stream_sid)
        self._chunk = 0
        self._ts = 0

    # --- TwilioTransport --------------------------------------------------------------
    async def receive(self) -> str | bytes | None:
        return await self._incoming.get()

    async def send_text(self, text: str) -> None:
        if self.closed is not None:
            from foreman.exceptions import SessionClosed

            raise SessionClosed("memory socket closed")
        got = parse_server_frame(text, self.stream_sid)
        self.raw_sent.append(text)
        if got.raw is not None:
            self.sent.append(got.raw)
        match got:
            case ServerMedia(audio=audio):
                self._playq.append(("media", bytearray(audio)))
            case ServerMark(name=name):
                self._playq.append(("mark", name))
            case ServerClear():
                pending = [v for k, v in self._playq if k == "mark"]
                self._playq.clear()
                if self.echo_on_clear:
                    for name in pending:
                        self.feed_mark(name)
            case Rejected():
                self.rejected.append(got)
        async with self._changed:
            self._changed.notify_all()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)
        self._incoming.put_nowait(None)
        async with self._changed:
            self._changed.notify_all()

    # --- Twilio -> session ------------------------------------------------------------
    def feed(self, frame: str | bytes | None) -> None:
        """Any frame (None = the socket closed without `stop`)."""
        self._incoming.put_nowait(frame)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def feed_media(self, ulaw: bytes) -> None:
        """Caller audio, split into 20 ms frames like Twilio does."""
        for i in range(0, len(ulaw), 160):
            self._chunk += 1
            frame = media_frame(
                self._next_seq(), self._chunk, self._ts, ulaw[i : i + 160], sid_json=self._sid_json
            )
            self.feed(frame)
            self._ts += 20

    def feed_mark(self, name: str) -> None:
        self.feed(mark_frame(self._next_seq(), self.stream_sid, name))

    def feed_dtmf(self, digit: str) -> None:
        self.feed(dtmf_frame(self._next_seq(), self.stream_sid, digit))

    def feed_stop(self) -> None:
        self.feed(stop_frame(self._next_seq(), self.stream_sid, ACCOUNT_SID, "CA" + "0" * 32))

    def play(self, ms: float) -> int:
        """Play `ms` of queued audio; echo every mark reached. Returns marks echoed."""
        budget = int(ms * BYTES_PER_MS)
        echoed = 0
        while self._playq:
            kind, value = self._playq[0]
            if kind == "mark":
                self._playq.popleft()
                self.feed_mark(value)
                echoed += 1
                continue
            if budget <= 0:
                break
            take = min(budget, len(value))
            del value[:take]
            budget -= take
            if not value:
                self._playq.popleft()
        return echoed

    def play_all(self) -> int:
        return self.play(10**9)

    async def play_in_real_time(self, tick_ms: int = 20) -> None:
        """Play queued audio as a phone would, at real-time pace, until cancelled (run it
        as a task: it stands for the caller's earpiece, not for synchronisation)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while self.closed is None:
            await asyncio.sleep(tick_ms / 1000)
            now = loop.time()
            self.play((now - last) * 1000)
            last = now

    # --- what the session sent ------------------------------------------------------------
    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["event"] == kind]

    @property
    def kinds(self) -> list[str]:
        return [m["event"] for m in self.sent]

    @property
    def media_payload(self) -> bytes:
        return b"".join(base64.b64decode(m["media"]["payload"]) for m in self.events("media"))

    @property
    def marks(self) -> list[str]:
        return [m["mark"]["name"] for m in self.events("mark")]

    @property
    def clears(self) -> int:
        return len(self.events("clear"))

    @property
    def queued_ms(self) -> float:
        return sum(len(v) for k, v in self._playq if k == "media") / BYTES_PER_MS

    async def wait_until(self, pred: Callable[[], Any], timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(pred)
