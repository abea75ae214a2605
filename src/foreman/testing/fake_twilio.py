"""A fake Twilio caller that behaves like Twilio towards Foreman.

https://www.twilio.com/docs/voice/media-streams/websocket-messages

    caller = FakeTwilioCaller(server_http="http://127.0.0.1:PORT",
                              public_url="https://voice.example.com", auth_token=TOKEN)
    await caller.dial()                      # signed webhook, TwiML, signed WS upgrade, start
    await caller.play_speech(synthesize("hello", 8000))   # paced µ-law frames, 20 ms each
    await caller.wait_for("media")           # what the server plays back
    await caller.hangup()                    # stop, then close

* `dial()` posts `/twilio/voice` form-encoded with a valid `X-Twilio-Signature` computed over
  `public_url + "/twilio/voice"` (what Twilio signs), reads `<Connect><Stream url>` and
  `<Parameter>`s from the TwiML, and opens the WebSocket on the same *path* of `server_http`
  with a signature over the `wss://` URL from the TwiML. Then `connected` and `start`
  (customParameters = the TwiML parameters, fresh `MZ`/`CA` sids, µ-law/8000/1).
* Every frame is built and judged by the caller role of the protocol module
  (`foreman.protocols.twilio.TwilioCallerStream`); this class only paces, plays and records.
* Uplink: one task sends 160-byte `media` frames against a monotonic 20 ms schedule (late
  frames are sent at once to catch up, like audio delivered over TCP), with `chunk`,
  `timestamp` and `sequenceNumber` as strings. `continuous_silence=True` fills idle time with
  silence frames as real Twilio does (the stream never goes quiet).
* Playback emulation: server `media` queues and "plays" at 8 kHz (160 bytes per 20 ms) on its
  own task; a `mark` is echoed when all audio queued before it has played (at once if nothing
  is queued); a `clear` drops all queued audio at once and echoes every pending mark.
* `validation_errors` lists anything the server sent that Twilio would reject (errors 31950 /
  31951): binary frames, unknown events, wrong `streamSid`, extra or missing fields, messages
  before `start` or after `stop`; and what it accepts but plays badly (payloads that are not
  whole 160-byte frames). Recorded, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from foreman.audio.g711 import pcm16_to_ulaw
from foreman.exceptions import SessionClosed
from foreman.protocols.twilio.caller import TwilioCallerStream, new_sid
from foreman.protocols.twilio.messages import (
    Rejected,
    ServerClear,
    ServerMark,
    ServerMedia,
    Tolerated,
)
from foreman.protocols.twilio.signature import SIGNATURE_HEADER, compute_signature
from foreman.testing.fake_twilio_earpiece import TwilioPlayback

FRAME = 160  # bytes of µ-law per 20 ms
FRAME_S = 0.020
SILENCE = b"\xff" * FRAME
RESYNC_AFTER_S = 1.0  # uplink more than this late: start a new schedule instead of bursting
Signature = str | None | Literal["valid"]


class FakeCallError(RuntimeError):
    """The fake call could not proceed (webhook refused, bad TwiML, socket closed)."""


class WebhookRefused(FakeCallError):
    """The voice webhook answered an HTTP error: `status`, and `text` as the server sent it."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"voice webhook answered {status}: {text[:200]!r}")
        self.status = status
        self.text = text


class FakeTwilioCaller:
    """One fake call. Not reusable: dial (or answer) once, hang up once."""

    def __init__(
        self,
        *,
        server_http: str,
        public_url: str,
        auth_token: str,
        account_sid: str = "AC" + "0" * 32,
        from_: str = "+15005550006",
        to: str = "+15005550001",
        call_sid: str | None = None,
        continuous_silence: bool = False,
        record_media: bool = True,
    ) -> None:
        self.server_http = server_http.rstrip("/")
        self.public_url = public_url.rstrip("/")
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.from_ = from_
        self.to = to
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = new_sid("MZ")
        self.continuous_silence = continuous_silence
        self.record_media = record_media  # False: keep server media out of `received` (benchmarks)
        # What the tests look at.
        self.received: list[dict[str, Any]] = []
        self.marks_echoed: list[str] = []
        self.marks_dropped: list[str] = []  # echoed because of a clear (not played)
        self.validation_errors: list[str] = []
        self.frames_sent = 0
        self.media_sent_at: list[float] = []  # loop time each uplink frame was sent (chunk - 1)
        self.received_at: list[float] = []  # loop time each entry of `received` arrived
        self.media_received = 0
        self.on_message: Callable[[dict[str, Any], float], None] | None = None  # (msg, loop time)
        self.twiml: str | None = None
        self.stream_url: str | None = None
        self.parameters: dict[str, str] = {}
        self.close_code: int | None = None
        # Internals.
        self._ws: ClientConnection | None = None
        self._wire = TwilioCallerStream()  # builds every frame we send, judges every one we get
        self._t0 = 0.0
        self._changed = asyncio.Condition()
        self._closed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # uplink: frames to send, and futures resolved once everything before them was sent
        self._outq: deque[bytes | asyncio.Future[None]] = deque()
        self._out_event = asyncio.Event()
        self._playback = TwilioPlayback(self._echo_mark, self._notify)

    # ------------------------------------------------------------------ dialling
    def voice_params(self) -> dict[str, str]:
        """The form fields of the voice webhook."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
        }

    async def post_voice_webhook(
        self, *, signature: Signature = "valid", params: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST `/twilio/voice` like Twilio. `signature="valid"` signs it; pass None to omit
        the header or a string to send that value (for 403 tests)."""
        form = params if params is not None else self.voice_params()
        headers = {"User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": new_sid("")}
        if signature == "valid":
            signature = compute_signature(self.auth_token, self.public_url + "/twilio/voice", form)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
            return await http.post(self.server_http + "/twilio/voice", data=form, headers=headers)

    async def dial(self) -> None:
        """Place the call: webhook, then the media stream. Raises WebhookRefused if the server
        refuses the webhook, FakeCallError if its TwiML has no `<Connect><Stream>`."""
        response = await self.post_voice_webhook()
        if response.status_code != 200:
            raise WebhookRefused(response.status_code, response.text)
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in ("text/xml", "application/xml"):
            # Twilio reads a text/plain body aloud and hangs up.
            self.validation_errors.append(f"voice webhook Content-Type {content_type!r}")
        await self.answer(response.text)

    async def answer(self, twiml: str, *, signature: Signature = "valid") -> None:
        """Run `twiml` as Twilio would once the call is answered (also for outbound calls
        placed through the REST stand-in): open the `<Connect><Stream>` it names."""
        self.twiml = twiml
        try:
            root = ET.fromstring(twiml)
        except ET.ParseError as exc:
            raise FakeCallError(f"TwiML is not XML: {exc}") from None
        stream = root.find("./Connect/Stream")
        if root.tag != "Response" or stream is None or not stream.get("url"):
            raise FakeCallError(f"TwiML has no <Connect><Stream url>: {twiml[:200]!r}")
        params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        await self.open_stream(stream.get("url", ""), params, signature=signature)

    async def open_stream(
        self, stream_url: str, parameters: dict[str, str], *, signature: Signature = "valid"
    ) -> None:
        """Open the media socket for `stream_url` (the `wss://` public URL) on `server_http`,
        then send `connected` and `start`. websockets' InvalidStatus propagates when the server
        refuses the upgrade (e.g. 403)."""
        parts = urlsplit(stream_url)
        if parts.scheme != "wss":
            self.validation_errors.append(f"stream URL scheme {parts.scheme!r} (Twilio: wss only)")
        if parts.query:
            self.validation_errors.append("stream URL has a query string (Twilio: error 31920)")
        self.stream_url = stream_url
        self.parameters = dict(parameters)
        local = urlsplit(self.server_http)
        ws_scheme = "wss" if local.scheme == "https" else "ws"
        target = urlunsplit((ws_scheme, local.netloc, parts.path, "", ""))
        headers = {}
        if signature == "valid":
            signature = compute_signature(self.auth_token, stream_url, {})
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        self._ws = await connect(
            target, additional_headers=headers, max_size=None, proxy=None, compression=None
        )
        self._spawn(self._reader())
        self._spawn(self._playback.run())
        await self._send(self._wire.connected())
        self._t0 = asyncio.get_running_loop().time()
        await self._send(
            self._wire.start(
                stream_sid=self.stream_sid,
                call_sid=self.call_sid,
                account_sid=self.account_sid,
                custom_parameters=self.parameters,
            )
        )
        self._spawn(self._uplink())

    # ------------------------------------------------------------------ uplink
    async def play_speech(self, pcm16_8k: bytes) -> None:
        """Speak: PCM16 LE 8 kHz -> µ-law, sent as 20 ms frames in real time. Returns when the
        last frame has been sent."""
        await self.send_ulaw(pcm16_to_ulaw(pcm16_8k))

    async def send_silence(self, ms: int) -> None:
        """Send `ms` (rounded up to 20 ms) of µ-law silence in real time."""
        await self.send_ulaw(SILENCE * -(-ms // 20))

    async def send_ulaw(self, ulaw: bytes) -> None:
        """Send µ-law bytes as paced 160-byte frames (the last one padded with silence)."""
        if self._wire.phase != "streaming":
            raise FakeCallError("the stream is not open")
        if len(ulaw) % FRAME:
            ulaw += b"\xff" * (FRAME - len(ulaw) % FRAME)
        for i in range(0, len(ulaw), FRAME):
            self._outq.append(ulaw[i : i + FRAME])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outq.append(done)
        self._out_event.set()
        await done

    async def send_dtmf(self, digit: str) -> None:
        """The caller presses a key (`0`-`9`, `*`, `#`; ValueError for anything else)."""
        if self._wire.phase != "streaming":
            raise FakeCallError("the stream is not open")
        await self._send(self._wire.dtmf(digit))

    async def _uplink(self) -> None:
        loop = asyncio.get_running_loop()
        next_t: float | None = None
        try:
            while True:
                while self._outq and isinstance(self._outq[0], asyncio.Future):
                    fut = self._outq.popleft()
                    if isinstance(fut, asyncio.Future) and not fut.done():
                        fut.set_result(None)
                if not self._outq and not self.continuous_silence:
                    self._out_event.clear()
                    await self._out_event.wait()
                    next_t = None
                    continue
                now = loop.time()
                if next_t is None or now - next_t > RESYNC_AFTER_S:
                    next_t = now
                elif next_t > now:
                    await asyncio.sleep(next_t - now)
                item = self._outq.popleft() if self._outq else SILENCE
                if isinstance(item, asyncio.Future):  # appended while we slept
                    self._outq.appendleft(item)
                    continue
                if self._ws is None:
                    break
                frame = self._wire.media(item, round((next_t - self._t0) * 1000))
                await self._ws.send(frame)
                self.media_sent_at.append(loop.time())
                self.frames_sent += 1
                next_t += FRAME_S
        except (ConnectionClosed, SessionClosed):  # the call ended under us
            pass
        finally:
            self._fail_pending_sends()

    def _fail_pending_sends(self) -> None:
        for item in self._outq:
            if isinstance(item, asyncio.Future) and not item.done():
                item.set_exception(FakeCallError("the media stream closed"))
        self._outq.clear()

    # ----------------------------------------------------------------- playback
    @property
    def played(self) -> bytearray:
        """µ-law audio from the server that has actually "played"."""
        return self._playback.played

    @property
    def clears(self) -> int:
        return self._playback.clears

    @property
    def dropped_bytes(self) -> int:
        """Audio dropped by `clear` before it played."""
        return self._playback.dropped_bytes

    async def _echo_mark(self, name: str, dropped: bool) -> None:
        self.marks_echoed.append(name)
        if dropped:
            self.marks_dropped.append(name)
        if self._wire.phase != "streaming":
            return
        with contextlib.suppress(ConnectionClosed):
            await self._send(self._wire.mark(name))

    # ------------------------------------------------------------------- inbound
    async def _reader(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                await self._handle(message)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self._wire.connection_lost()
            self._closed.set()
            for task in list(self._tasks):
                if task is not asyncio.current_task():
                    task.cancel()
            self._fail_pending_sends()
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, message: str | bytes) -> None:
        now = asyncio.get_running_loop().time()
        for event in self._wire.receive(message):
            if isinstance(event, Tolerated):
                self.validation_errors.append(event.reason)
                continue
            if event.raw is not None:
                self._record(event.raw, now)
            if isinstance(event, Rejected):
                self.validation_errors.extend(event.problems)  # Twilio would not act on it
            elif isinstance(event, ServerMedia):
                self._playback.add_audio(event.audio)
            elif isinstance(event, ServerMark):
                await self._playback.add_mark(event.name)
            elif isinstance(event, ServerClear):
                await self._playback.clear()
        await self._notify()

    def _record(self, msg: dict[str, Any], now: float) -> None:
        is_media = msg.get("event") == "media"
        if is_media:
            self.media_received += 1
        if not is_media or self.record_media:
            self.received.append(msg)
            self.received_at.append(now)
        if self.on_message is not None:
            self.on_message(msg, now)

    # ------------------------------------------------------------------- waiting
    async def wait_for(
        self,
        event: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Wait for the `count`-th message of `event` (media / mark / clear) the server sent,
        matching `predicate` if given, and return it. TimeoutError says what was seen."""

        def matches() -> list[dict[str, Any]]:
            return [
                m
                for m in self.received
                if m.get("event") == event and (predicate is None or predicate(m))
            ]

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(matches()) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"fake caller: waited {timeout:g} s for {count} {event!r}, got {len(matches())}"
            ) from None
        return matches()[count - 1]

    async def wait_played_ms(self, ms: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until at least `ms` of server audio has been played."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(self.played) >= ms * 8)
        except TimeoutError:
            raise TimeoutError(
                f"fake caller: {self.played_ms:g} ms played after {timeout:g} s, wanted {ms}"
            ) from None

    async def wait_closed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until the media socket is closed (by either side)."""
        async with asyncio.timeout(timeout):
            await self._closed.wait()

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float | None,  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
    ) -> None:
        """Wait until `predicate()` holds; it is checked whenever a message arrives, a frame
        plays or the socket closes. TimeoutError after `timeout` seconds (None: no limit)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    @property
    def closed(self) -> bool:
        """The media socket is closed (by either side)."""
        return self._closed.is_set()

    @property
    def playing(self) -> bool:
        """Server audio is queued or being played."""
        return self._playback.playing

    @property
    def played_ms(self) -> float:
        return len(self.played) / 8

    @property
    def queued_ms(self) -> float:
        """Server audio received and not yet played."""
        return self._playback.queued_bytes / 8

    # ------------------------------------------------------------------- ending
    async def hangup(self) -> None:
        """The caller hangs up: `stop`, then close the socket."""
        if self._ws is None:
            return
        if self._wire.phase == "streaming":
            with contextlib.suppress(ConnectionClosed):
                await self._send(self._wire.stop())
        self._wire.connection_lost()
        await self._shutdown()

    remote_hangup = hangup  # the call was completed through REST: Twilio does the same

    async def close_without_stop(self) -> None:
        """Drop the socket without `stop` (the server must clean up as on `stop`)."""
        self._wire.connection_lost()
        await self._shutdown()

    async def aclose(self) -> None:
        """Hang up if still connected; release every task."""
        if self._ws is not None and self._wire.phase != "stopped":
            await self.hangup()
        await self._shutdown()

    async def __aenter__(self) -> FakeTwilioCaller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _shutdown(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_pending_sends()

    # ------------------------------------------------------------------- helpers
    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, frame: str) -> None:
        if self._ws is None:
            raise FakeCallError("the stream is not open")
        await self._ws.send(frame)
