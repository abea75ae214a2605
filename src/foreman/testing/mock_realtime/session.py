"""One mock Realtime session: the state of one WebSocket connection and its client-event handlers.

Client events are plain dicts, dispatched by `type` through `HANDLERS`. Replies follow the GA
protocol (https://platform.openai.com/docs/api-reference/realtime-client-events). Errors echo
the client's `event_id` in `error.event_id` and never close the session.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from foreman.audio.formats import AudioFormat
from foreman.testing.mock_realtime import conversation, ids, input_audio
from foreman.testing.mock_realtime import errors as E
from foreman.testing.mock_realtime.audio_io import TurnDetector
from foreman.testing.mock_realtime.conversation import normalise_item
from foreman.testing.mock_realtime.errors import ClientError, only
from foreman.testing.mock_realtime.faults import Faults, as_error_event
from foreman.testing.mock_realtime.responder import ActiveResponse, Responder
from foreman.testing.mock_realtime.scenario import Turn
from foreman.testing.mock_realtime.schema import (
    RESPONSE_PARAMS,
    apply_update,
    default_session,
    validate_session_update,
)

if TYPE_CHECKING:
    from foreman.testing.mock_realtime.server import MockRealtimeServer

log = logging.getLogger(__name__)
Event = dict[str, Any]
Handler = Callable[["MockSession", Event], Awaitable[None]]


class MockSession:
    """State of one connection. Tests read `received`, `sent`, `model`, `closed`, `config`,
    `handshake_headers`."""

    def __init__(
        self,
        server: MockRealtimeServer,
        model: str,
        send_raw: Callable[[str], Awaitable[None]],
        drop: Callable[[], None],
        faults: Faults,
        *,
        connection: int = 0,
        freeze: Callable[[], None] | None = None,
    ) -> None:
        self.server = server
        self.model = model
        self.faults = faults
        self._send_raw = send_raw
        self._drop = drop
        self._freeze = freeze
        self.connection = connection  # 0-based index of this connection on the server
        self.drop_after = faults.drop_point(connection)
        self.freeze_after = faults.freeze_point(connection)
        self.frozen = False
        self.abort: Callable[[], None] = drop  # the server sets the transport's abort
        self.received: list[Event] = []
        self.sent: list[Event] = []
        self.handshake_headers: dict[str, str] = {}  # as the client sent them (lower-case)
        self.closed = False
        self.dropped = False
        self._closed_event = asyncio.Event()
        self.internal_errors: list[BaseException] = []
        self.config: dict[str, Any] = default_session(model)
        self.id: str = self.config["id"]
        self.conversation_id = ids.conversation_id()
        self.items: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.audio_sent: dict[str, bytearray] = {}  # assistant item id -> audio bytes sent
        self.audio_fmt: dict[str, AudioFormat] = {}  # ... and their format
        self.audio_turns: dict[str, int] = {}  # user audio item id -> turn number (1-based)
        self.rule_hits: dict[int, int] = {}
        self.voice_locked = False
        self.remaining_tokens = 15_000_000
        self.active: ActiveResponse | None = None
        self.side_responses: set[ActiveResponse] = set()
        # input audio: bytes of the current buffer, and the session clock (ms of ALL audio
        # appended this session, as the service counts offsets)
        self.buffer = bytearray()
        self.buffer_start_ms = 0.0
        self.audio_ms = 0.0
        self.detector: TurnDetector | None = None
        self.speech_item: str | None = None
        self.speech_start_ms = 0
        self.idle_task: asyncio.Task[None] | None = None

    # --- sending ---------------------------------------------------------------------------

    async def send(self, event: Event) -> bool:
        """Send a server event (adds `event_id` first). False once the connection is gone."""
        if self.closed or self.dropped or self.frozen:
            return False
        event = {"event_id": ids.event_id(), **event} if "event_id" not in event else event
        # the SDK models put `type` first on the wire; keep it readable in traces
        event = {"type": event["type"], **{k: v for k, v in event.items() if k != "type"}}
        self.sent.append(event)
        try:
            await self._send_raw(json.dumps(event))
        except ConnectionClosed:
            self.closed = True
            return False
        await self.server._notify()
        limit = self.drop_after
        if limit is not None and len(self.sent) >= limit:
            self.dropped = True
            self._drop()  # fault: the TCP connection goes away without a close frame
            return False
        freeze = self.freeze_after
        if freeze is not None and len(self.sent) >= freeze:
            self.frozen = True  # fault: a hung service: silent, and deaf to pings
            if self._freeze is not None:
                self._freeze()
            return False
        return True

    def drop(self) -> None:
        """Drop the connection now, as a network would: no close frame (the client sees
        1006). Events already sent are delivered."""
        if not (self.closed or self.dropped):
            self.dropped = True
            self._drop()

    async def send_error(self, body: E.ErrorBody, client_event: Event | None = None) -> None:
        body = dict(body)
        if client_event is not None and isinstance(client_event.get("event_id"), str):
            body["event_id"] = client_event["event_id"]
        await self.send({"type": "error", "error": body})

    # --- conversation ----------------------------------------------------------------------

    def add_item(self, item: dict[str, Any], previous_item_id: str | None = None) -> str | None:
        """Insert `item` (after `previous_item_id`, or at the end); returns its predecessor."""
        if previous_item_id is None:
            prev = self.order[-1] if self.order else None
            self.order.append(item["id"])
        elif previous_item_id == "root":
            prev = None
            self.order.insert(0, item["id"])
        else:
            pos = self.order.index(previous_item_id) + 1
            prev = previous_item_id
            self.order.insert(pos, item["id"])
        self.items[item["id"]] = item
        return prev

    def previous_of(self, item_id: str) -> str | None:
        pos = self.order.index(item_id) if item_id in self.order else 0
        return self.order[pos - 1] if pos > 0 else None

    @staticmethod
    def public_item(item: dict[str, Any]) -> dict[str, Any]:
        """The item as events carry it: never with audio bytes."""
        out = copy.deepcopy(item)
        for part in out.get("content", []):
            part.pop("audio", None)
        return out

    # --- client events ---------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            self.received.append({"type": None, "raw": text})
            await self.server._notify()
            await self.send_error(
                E.invalid_json(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
            )
            return
        if not isinstance(event, dict):
            self.received.append({"type": None, "raw": text})
            await self.server._notify()
            await self.send_error(E.invalid_type("event", "an object", event))
            return
        self.received.append(event)
        await self.server._notify()
        kind = event.get("type")
        if not isinstance(kind, str):
            await self.send_error(
                E.missing_required("type")
                if kind is None
                else E.invalid_type("type", "a string", kind),
                event,
            )
            return
        if kind in self.faults.error_on:
            await self.send_error(as_error_event(self.faults.error_on[kind])["error"], event)
            return
        handler = HANDLERS.get(kind)
        if handler is None:
            await self.send_error(E.unknown_event_type(kind), event)
            return
        try:
            await handler(self, event)
        except ClientError as exc:
            await self.send_error(exc.body, event)
        except Exception as exc:  # a bug in the mock: keep the client's session alive
            await self.internal_error(exc, event)

    async def internal_error(self, exc: BaseException, event: Event | None = None) -> None:
        """Record a mock bug (tests assert `internal_errors` is empty) and answer the way the
        service answers its own failures: a `server_error` that does not close the session."""
        log.exception("mock realtime: internal error", exc_info=exc)
        self.internal_errors.append(exc)
        await self.send_error(
            E.error(
                None,
                "The server had an error while processing your request. Sorry about that!",
                type="server_error",
            ),
            event,
        )

    async def handle_binary(self) -> None:
        await self.send_error(E.binary_frame())

    async def on_session_update(self, event: Event) -> None:
        if err := validate_session_update(event, self.config):
            raise ClientError(err)
        update = event["session"]
        out = (update.get("audio") or {}).get("output") or {}
        if (
            "voice" in out
            and out["voice"] != self.config["audio"]["output"]["voice"]
            and self.voice_locked
        ):
            raise ClientError(E.voice_locked())
        old_in = self.config["audio"]["input"]
        self.config = apply_update(self.config, update)
        new_in = self.config["audio"]["input"]
        if (
            new_in["format"] != old_in["format"]
            or new_in["turn_detection"] != old_in["turn_detection"]
        ):
            self.detector = None  # rebuilt on the next append with the new settings
        public = copy.deepcopy(self.config)
        await self.send({"type": "session.updated", "session": public})

    # responses ---------------------------------------------------------------------------

    async def on_response_create(self, event: Event) -> None:
        only(event, ("response",))
        params = event.get("response") or {}
        if err := RESPONSE_PARAMS("response", params):
            raise ClientError(err)
        out_of_band = params.get("conversation") == "none"
        if not out_of_band and self.active is not None:
            raise ClientError(E.active_response(self.active.id))
        await self.start_response(params)

    async def start_response(self, params: dict[str, Any]) -> ActiveResponse:
        self.disarm_idle_timeout()
        in_conv = params.get("conversation") != "none"
        resp = ActiveResponse(ids.response_id(), in_conv, dict(params))
        reply = self.server.scenario.choose(self.current_turn(params), self.rule_hits)
        if in_conv:
            self.active = resp
        else:
            self.side_responses.add(resp)
        responder = Responder(self, resp, reply)
        if await responder.announce():
            resp.task = asyncio.create_task(responder.run(), name=f"mock-{resp.id}")
        else:
            self.response_finished(resp)
        return resp

    def response_finished(self, resp: ActiveResponse) -> None:
        if self.active is resp:
            self.active = None
        self.side_responses.discard(resp)

    # idle timeout (server_vad `idle_timeout_ms`) ---------------------------------------------

    def arm_idle_timeout(self, resp: ActiveResponse) -> None:
        """After a completed response: if the user stays silent for `idle_timeout_ms` after
        the assistant's audio has finished playing, nudge with `timeout_triggered`."""
        td = self.config["audio"]["input"]["turn_detection"]
        idle = td.get("idle_timeout_ms") if td is not None and td["type"] == "server_vad" else None
        if idle is None or self.closed:
            return
        loop = asyncio.get_running_loop()
        played = loop.time() - resp.first_audio_at if resp.first_audio_at is not None else 0.0
        playback_left = max(0.0, resp.audio_ms / 1000 - played)
        self.disarm_idle_timeout()
        self.idle_task = asyncio.create_task(self._idle_timeout(playback_left + idle / 1000))

    def disarm_idle_timeout(self) -> None:
        task, self.idle_task = self.idle_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _idle_timeout(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.idle_task = None
        if self.active is not None or self.speech_item is not None:
            return
        item_id = ids.item_id()
        start = self.buffer_start_ms if self.buffer else self.audio_ms
        await self.send(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "item_id": item_id,
                "audio_start_ms": int(start),
                "audio_end_ms": int(self.audio_ms),
            }
        )
        # the silent stretch becomes a user item and a response follows
        await input_audio.commit(self, item_id)
        await self.start_response({})

    async def on_response_cancel(self, event: Event) -> None:
        only(event, ("response_id",))
        wanted = event.get("response_id")
        target = self.active
        if wanted is not None:
            target = next(
                (r for r in (self.active, *self.side_responses) if r and r.id == wanted), None
            )
        if target is None or target.cancelled:
            raise ClientError(E.cancel_not_active())
        target.cancel("client_cancelled")
        if target.task is not None:
            # the reply to the cancel is that response's `response.done`; wait for it so the
            # order on the wire is deterministic
            await asyncio.shield(target.task)

    def current_turn(self, params: dict[str, Any]) -> Turn:
        """What the response answers: the last user or tool-output item."""
        instructions = params.get("instructions")
        items = params.get("input")
        candidates = (
            [normalise_item(i) for i in items if isinstance(i, dict)]
            if isinstance(items, list)
            else [self.items[i] for i in self.order]
        )
        for item in reversed(candidates):
            kind, role = item.get("type"), item.get("role")
            if kind == "message" and role == "system":
                continue
            if kind == "message" and role == "user":
                texts = [
                    p.get("text", "")
                    for p in item.get("content", [])
                    if p.get("type") == "input_text"
                ]
                if texts:
                    return Turn("text", text=" ".join(texts), instructions=instructions)
                transcript = next(
                    (p.get("transcript") for p in item.get("content", []) if p.get("transcript")),
                    None,
                )
                return Turn(
                    "audio",
                    text=transcript,
                    audio_turn=self.audio_turns.get(item["id"], 0),
                    instructions=instructions,
                )
            if kind == "function_call_output":
                name = next(
                    (
                        i.get("name")
                        for i in self.items.values()
                        if i.get("type") == "function_call"
                        and i.get("call_id") == item.get("call_id")
                    ),
                    None,
                )
                return Turn("tool_output", tool_name=name, instructions=instructions)
            break
        return Turn("none", instructions=instructions)

    # lifecycle -----------------------------------------------------------------------------

    async def wait_closed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a timeout is the API
        """Return once the connection has ended and the session has stopped streaming."""
        async with asyncio.timeout(timeout):
            await self._closed_event.wait()

    async def shutdown(self) -> None:
        """Stop streaming (the connection is closing)."""
        self.closed = True
        idle = self.idle_task
        self.disarm_idle_timeout()
        if idle is not None:
            await asyncio.gather(idle, return_exceptions=True)
        for resp in (self.active, *self.side_responses):
            if resp is not None and resp.task is not None:
                resp.cancel("client_cancelled")
                resp.task.cancel()
        tasks = [
            r.task
            for r in (self.active, *self.side_responses)
            if r is not None and r.task is not None
        ]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._closed_event.set()


HANDLERS: dict[str, Handler] = {
    "session.update": MockSession.on_session_update,
    "input_audio_buffer.append": input_audio.on_append,
    "input_audio_buffer.commit": input_audio.on_commit,
    "input_audio_buffer.clear": input_audio.on_clear,
    "conversation.item.create": conversation.on_item_create,
    "conversation.item.retrieve": conversation.on_item_retrieve,
    "conversation.item.delete": conversation.on_item_delete,
    "conversation.item.truncate": conversation.on_item_truncate,
    "response.create": MockSession.on_response_create,
    "response.cancel": MockSession.on_response_cancel,
}
