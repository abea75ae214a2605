"""One mock GPT-Live session: the state of one WebSocket on `/v1/live/sessions`.

* The first client event must be `session.start` (strict config: unknown fields are
  rejected); then `session.started`, and the output track runs: one
  `session.output_audio.delta` every `chunk_ms`, paced in real time, speech or digital
  silence, for the whole session.
* Input audio runs through a VAD on the session timeline. When the user starts talking
  over the assistant, the model yields by itself (the rest of that utterance is dropped;
  nothing is asked of the client). When the user stops, audio turn n is transcribed from
  the scenario's `transcripts` as `session.input_transcript.delta` pieces and answered.
* Replies come from the `Scenario` (`Turn` kinds: audio, text, tool_output; an
  instruction is matched only by rules with `Match.instructions`). `Say`/`Text` steps are
  spoken on the track with `session.output_transcript.delta` pieces; `Call` steps delegate
  (`session.delegation.created`, then `response.event` envelopes: `response.created`, a
  completed `function_call` in `response.output_item.done`, `response.completed`). After
  one `function_call_output` per call and a `response.create`, the backend "continues":
  the rule for `Match.tool(name)` answers, spoken by the voice model.
* `session.close` answers `session.closed` (reason, final usage) and closes the socket.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from foreman.audio.formats import PCM16_24K, AudioFormat
from foreman.testing.mock_realtime import errors as E
from foreman.testing.mock_realtime import ids
from foreman.testing.mock_realtime.audio_io import TurnDetector, split_words
from foreman.testing.mock_realtime.errors import ClientError
from foreman.testing.mock_realtime.live import responses, wire
from foreman.testing.mock_realtime.live.faults import LiveFaults
from foreman.testing.mock_realtime.live.responses import Work
from foreman.testing.mock_realtime.live.track import OutputTrack
from foreman.testing.mock_realtime.scenario import Call, Reply, Scenario, Turn, default_reply

if TYPE_CHECKING:
    from foreman.testing.mock_realtime.server import MockRealtimeServer

log = logging.getLogger(__name__)
Event = dict[str, Any]
VAD = {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500}
MAX_APPEND_BYTES = 15 * 1024 * 1024


class LiveMockSession:
    """Tests read `received`, `sent`, `config`, `yields`, `audio_turns`, `closed`."""

    def __init__(
        self,
        server: MockRealtimeServer,
        send_raw: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        *,
        chunk_ms: int = 100,
    ) -> None:
        self.server = server
        self._send_raw = send_raw
        self._close = close
        self.chunk_ms = chunk_ms
        self.received: list[Event] = []
        self.sent: list[Event] = []
        self.internal_errors: list[BaseException] = []
        self.handshake_headers: dict[str, str] = {}
        self.id = ids.new_id("live_")
        self.config: dict[str, Any] | None = None
        self.fmt: AudioFormat = PCM16_24K
        self.closed = False
        # Faults (set by the server): a dropped connection, a hung one, an early expiry.
        self.faults = LiveFaults()
        self.abort: Callable[[], None] = lambda: None
        self.pause_reading: Callable[[], None] = lambda: None
        self.dropped = self.frozen = False
        self.expires_at: int | None = None
        self.input_ms = 0.0
        self.audio_turns = 0
        self._detector: TurnDetector | None = None
        self._speech_started_ms = 0
        self.track = OutputTrack(self.fmt, chunk_ms, self._send_track)
        self._replies: asyncio.Queue[tuple[Reply, Work]] = asyncio.Queue()
        self._awaiting: dict[str, dict[str, str | None]] = {}  # delegation -> call -> output
        self._call_names: dict[str, str] = {}
        self._typed: list[str] = []
        self._hits: dict[int, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def scenario(self) -> Scenario:
        return self.server.scenario

    @property
    def yields(self) -> int:
        """Times the model stopped talking because the user talked over it."""
        return self.track.yields

    @property
    def audio_out(self) -> bytearray:
        """Every byte of the output track, as sent."""
        return self.track.audio_out

    async def _send_track(self, event: Event, with_id: bool) -> bool:
        return await self.send(event, with_id=with_id)

    # --- sending ---------------------------------------------------------------------------
    async def send(self, event: Event, *, with_id: bool = True) -> bool:
        if self.closed or self.dropped or self.frozen:
            return False
        if with_id and "event_id" not in event:
            event = {"type": event["type"], "event_id": ids.event_id(), **event}
        if event["type"] == "session.output_audio.delta":
            # The track never stops: `sent` keeps its shape, `audio_out` its bytes.
            self.sent.append({"type": event["type"], "delta": ""})
        else:
            self.sent.append(event)
        try:
            await self._send_raw(json.dumps(event))
        except ConnectionClosed:
            self.closed = True
            return False
        await self.server._notify()
        fault = self.faults.after_send(len(self.sent))
        if fault is not None:
            self.fault(fault)
            return False
        return True

    def fault(self, action: str) -> None:
        """`drop`: the TCP connection goes, no close frame (the client sees 1006); `freeze`:
        silent and deaf (pings unanswered), as a hung service."""
        if self.dropped or self.frozen or self.closed:
            return
        if action == "drop":
            self.dropped = True
            self.abort()
        else:
            self.frozen = True
            self.pause_reading()

    async def send_error(self, body: E.ErrorBody, client_event: Event | None) -> None:
        err = {
            "type": body.get("type") or "invalid_request_error",
            "code": body.get("code") or "invalid_request",
            "message": body["message"],
            "param": body.get("param"),
        }
        if client_event is not None and isinstance(client_event.get("event_id"), str):
            err["client_event_id"] = client_event["event_id"]
        await self.send({"type": "error", "error": err})

    async def _envelope(self, delegation_id: str | None, nested: Event) -> None:
        await self.send({"type": "response.event", "delegation_id": delegation_id, "event": nested})

    # --- client events ---------------------------------------------------------------------
    async def handle_text(self, message: str) -> None:
        try:
            event = json.loads(message)
        except ValueError as exc:
            await self.send_error(E.invalid_json(str(exc)), None)
            return
        if not isinstance(event, dict):
            await self.send_error(E.invalid_json("a client event must be an object"), None)
            return
        self.received.append(event)
        await self.server._notify()
        kind = event.get("type")
        if self.faults.drops_on(kind, message):
            self.fault("drop")
            return
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        try:
            if handler is None:
                raise ClientError(wire.unknown_event(kind))
            if kind != "session.start" and self.config is None:
                raise ClientError(
                    E.error("session_not_started", "Send session.start first.", param="type")
                )
            await handler(self, event)
        except ClientError as exc:
            await self.send_error(exc.body, event)
        except Exception as exc:  # a mock bug: recorded for the test, the session goes on
            log.exception("live mock: %s failed", kind)
            self.internal_errors.append(exc)

    async def _on_start(self, event: Event) -> None:
        if self.config is not None:
            raise ClientError(E.error("session_already_started", "The session has started."))
        E.only(event, ("session",))
        cfg, fmt = wire.check_session(event.get("session"))
        self.config, self.fmt = cfg, fmt
        self.track = OutputTrack(fmt, self.chunk_ms, self._send_track)
        self._detector = TurnDetector(VAD, fmt, 0.0)
        self.expires_at = self.faults.expires_at(time.time())
        await self.send({"type": "session.started", "session": self._resource()})
        self._tasks.append(asyncio.create_task(self.track.run(), name="live-mock-track"))
        if self.expires_at is not None:
            self._tasks.append(asyncio.create_task(self._expire(), name="live-mock-expiry"))
        self._tasks.append(asyncio.create_task(self._perform_replies(), name="live-mock-replies"))

    def _resource(self) -> dict[str, Any]:
        assert self.config is not None
        return wire.resource(self.id, self.config, self.fmt, self.expires_at)

    async def _expire(self) -> None:
        assert self.expires_at is not None
        await asyncio.sleep(max(0.0, self.expires_at - time.time()))
        await self.finish("expired")

    async def _on_update(self, event: Event) -> None:
        E.only(event, ("session",))
        update = event.get("session")
        if not isinstance(update, dict):
            raise ClientError(E.invalid_type("session", "an object", update))
        for key in update:
            if key not in ("delegation", "triggers"):
                raise ClientError(
                    E.error(
                        "immutable_field_update",
                        f"session.{key} cannot change after startup.",
                        param=f"session.{key}",
                    )
                )
        await self.send({"type": "session.updated", "session": self._resource()})

    async def _on_append_audio(self, event: Event) -> None:
        E.only(event, ("audio",))
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ClientError(E.invalid_type("audio", "a string", audio))
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ClientError(E.invalid_value("audio", "not valid base64")) from exc
        if len(data) > MAX_APPEND_BYTES:
            raise ClientError(E.invalid_value("audio", "over 15 MiB"))
        self.received[-1] = {"type": event["type"], "audio": f"<{len(data)} bytes>"}
        self.input_ms += self.fmt.ms_for_bytes(len(data))
        assert self._detector is not None
        for turn in self._detector.feed(data):
            if turn.kind == "start":
                self._speech_started_ms = turn.ms
                self.track.user_talks_over()
            else:
                await self._audio_turn(turn.ms)

    async def _audio_turn(self, end_ms: int) -> None:
        self.audio_turns += 1
        self.server.live_audio_turns += 1
        n = self.server.live_audio_turns  # a scenario's turns go on across sessions
        text = self.scenario.transcripts.get(n, "")
        start = self._speech_started_ms
        pieces = [p for p in split_words(text, 3) if p] if text else []
        for i, piece in enumerate(pieces):
            a = start + (end_ms - start) * i // len(pieces)
            b = start + (end_ms - start) * (i + 1) // len(pieces)
            await self.send(
                {
                    "type": "session.input_transcript.delta",
                    "delta": piece,
                    "start_ms": a,
                    "end_ms": b,
                }
            )
        self._enqueue(Turn("audio", text or None, audio_turn=n), Work())

    async def _on_append(self, event: Event) -> None:
        E.only(event, ("content", "delegation_id"))
        content = event.get("content")
        if not isinstance(content, str) or not content:
            raise ClientError(E.invalid_type("content", "a non-empty string", content))
        if "delegation_id" not in event:
            raise ClientError(E.missing_required("delegation_id"))
        if event["delegation_id"] is not None and self._delegation_type() == "responses":
            raise ClientError(
                E.error(
                    "invalid_value",
                    "Non-null delegation_id is not accepted with Responses delegation.",
                    param="delegation_id",
                )
            )
        kind = str(event["type"]).rsplit(".", 1)[0]  # session.instructions
        await self.send(
            {
                "type": f"{kind}.appended",
                "start_ms": self.track.track_ms,
                "end_ms": self.track.track_ms,
                **_echo(event),
            }
        )
        if kind == "session.instructions":
            self._enqueue(Turn("none", instructions=content), Work(), instructed=True)

    def _delegation_type(self) -> str:
        delegation = (self.config or {}).get("delegation")
        return str(delegation.get("type")) if isinstance(delegation, dict) else "client"

    async def _on_mute(self, event: Event) -> None:
        E.only(event, ())
        suffix = "muted" if event["type"].endswith(".mute") else "unmuted"
        await self.send({"type": f"session.input_audio.{suffix}", **_echo(event)})

    async def _on_close(self, event: Event) -> None:
        E.only(event, ())
        await self.finish("close_requested", event)

    async def _unsupported(self, event: Event) -> None:
        raise ClientError(
            E.error("unsupported", f"The mock does not implement {event['type']}.", param="type")
        )

    async def finish(self, reason: str, event: Event | None = None) -> None:
        """Stop the track, send `session.closed`, close the socket."""
        for task in self._tasks:
            if task is not asyncio.current_task():  # the expiry finishes the session itself
                task.cancel()
        if self.config is not None:
            await self.send(
                {
                    "type": "session.closed",
                    "reason": reason,
                    "usage": {"seconds": self.track.track_ms / 1000},
                    "session": self._resource(),
                    **_echo(event or {}),
                }
            )
        self.closed = True
        with contextlib.suppress(ConnectionClosed):
            await self._close(1000, "session closed")

    async def shutdown(self) -> None:
        self.closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- the model -------------------------------------------------------------------------
    def _enqueue(self, turn: Turn, work: Work, *, instructed: bool = False) -> None:
        reply = self._choose(turn, instructed_only=instructed)
        if reply is not None:
            self._replies.put_nowait((reply, work))

    def _choose(self, turn: Turn, *, instructed_only: bool) -> Reply | None:
        for index, rule in enumerate(self.scenario.rules):
            if rule.times is not None and self._hits.get(index, 0) >= rule.times:
                continue
            if instructed_only and rule.match.instructions is None:
                continue
            if rule.match.matches(turn):
                self._hits[index] = self._hits.get(index, 0) + 1
                return rule.reply
        return None if instructed_only else default_reply(turn)

    async def _perform_replies(self) -> None:
        while True:
            reply, work = await self._replies.get()
            try:
                await self._perform(reply, work)
            except ConnectionClosed:
                return

    async def _perform(self, reply: Reply, work: Work) -> None:
        delegation_id = work.delegation_id
        model = self._backend_model()
        response: str | None = None
        calls: dict[str, str | None] = {}
        if work.backend:
            response = await self._response_created(delegation_id, model)
        for step in reply.steps:
            if isinstance(step, Call):
                if response is None:
                    response = ids.response_id()
                    if delegation_id is None:  # the voice model hands the work off now
                        delegation_id = ids.new_id("deleg_")
                        await self.send(
                            {
                                "type": "session.delegation.created",
                                "delegation": {
                                    "id": delegation_id,
                                    "type": "delegation",
                                    "target": "responses",
                                    "response_id": response,
                                },
                                "offset_ms": self.track.track_ms,
                            }
                        )
                    await self._response_created(delegation_id, model, response)
                call_id = ids.call_id()
                calls = self._awaiting.setdefault(delegation_id or "", {})
                calls[call_id] = None  # pending from now: an output may come at once
                self._call_names[call_id] = step.name
                await self._envelope(
                    delegation_id,
                    {
                        "type": "response.output_item.done",
                        "output_index": len(calls) - 1,
                        "sequence_number": 2,
                        "item": wire.function_call_item(call_id, step.name, step.arguments),
                    },
                )
            else:
                if response is not None:  # the backend's answer goes to the voice model
                    await self._response_completed(delegation_id, model, response)
                    response = None
                await self.track.say(step.text)
        if response is not None:
            await self._response_completed(delegation_id, model, response)

    def _backend_model(self) -> str:
        delegation = (self.config or {}).get("delegation") or {}
        return str((delegation.get("responses") or {}).get("model") or "gpt-6-luna")

    async def _response_created(
        self, delegation_id: str | None, model: str, response: str | None = None
    ) -> str:
        response = response or ids.response_id()
        await self._envelope(
            delegation_id,
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": wire.response_snapshot(response, model, "in_progress"),
            },
        )
        return response

    async def _response_completed(
        self, delegation_id: str | None, model: str, response: str
    ) -> None:
        await self._envelope(
            delegation_id,
            {
                "type": "response.completed",
                "sequence_number": 9,
                "response": wire.response_snapshot(response, model, "completed"),
            },
        )


def _echo(event: Event) -> Event:
    event_id = event.get("event_id")
    return {"client_event_id": event_id} if isinstance(event_id, str) else {}


_HANDLERS: dict[str, Callable[[LiveMockSession, Event], Awaitable[None]]] = {
    "session.start": LiveMockSession._on_start,
    "session.update": LiveMockSession._on_update,
    "session.input_audio.append": LiveMockSession._on_append_audio,
    "session.input_audio.mute": LiveMockSession._on_mute,
    "session.input_audio.unmute": LiveMockSession._on_mute,
    "session.instructions.append": LiveMockSession._on_append,
    "session.thinking.append": LiveMockSession._on_append,
    "session.commentary.append": LiveMockSession._on_append,
    "response.item.create": responses.on_item_create,
    "response.create": responses.on_response_create,
    "session.close": LiveMockSession._on_close,
    **{kind: LiveMockSession._unsupported for kind in (
        "session.output_audio.fixture.play", "decision.create", "decision.item.create",
        "decision.item.delete")},
}  # fmt: skip
