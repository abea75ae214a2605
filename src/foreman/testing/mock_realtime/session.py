"""One mock Realtime session: the state of one WebSocket connection and its client-event handlers.

Client events are plain dicts, dispatched by `type` through `HANDLERS`. Replies follow the GA
protocol (reference openai-realtime.md §2, §3, §5, §7). Errors echo the client's `event_id`
in `error.event_id` and never close the session (§7.1).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from foreman.audio.formats import AudioFormat
from foreman.testing.mock_realtime import errors as E
from foreman.testing.mock_realtime import ids
from foreman.testing.mock_realtime.audio_io import TurnDetector, fmt_of
from foreman.testing.mock_realtime.faults import Faults
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

Event = dict[str, Any]
Handler = Callable[["MockSession", Event], Awaitable[None]]

MAX_APPEND_BYTES = 15 * 1024 * 1024  # reference §6.1


class ClientError(Exception):
    """A client event the service would reject; carries the `error` body to send."""

    def __init__(self, body: E.ErrorBody) -> None:
        super().__init__(body["message"])
        self.body = body


class MockSession:
    """State of one connection. Tests read `received`, `sent`, `model`, `closed`, `config`."""

    def __init__(
        self,
        server: MockRealtimeServer,
        model: str,
        send_raw: Callable[[str], Awaitable[None]],
        abort: Callable[[], None],
        faults: Faults,
    ) -> None:
        self.server = server
        self.model = model
        self.faults = faults
        self._send_raw = send_raw
        self._abort = abort
        self.received: list[Event] = []
        self.sent: list[Event] = []
        self.closed = False
        self.dropped = False
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
        # appended this session, reference §6.1)
        self.buffer = bytearray()
        self.buffer_start_ms = 0.0
        self.audio_ms = 0.0
        self.detector: TurnDetector | None = None
        self.speech_item: str | None = None
        self.speech_start_ms = 0

    # --- sending ---------------------------------------------------------------------------

    async def send(self, event: Event) -> bool:
        """Send a server event (adds `event_id` first). False once the connection is gone."""
        if self.closed or self.dropped:
            return False
        event = {"event_id": ids.event_id(), **event} if "event_id" not in event else event
        # the SDK models put `type` first on the wire; keep it readable in traces
        event = {"type": event["type"], **{k: v for k, v in event.items() if k != "type"}}
        self.sent.append(event)
        try:
            await self._send_raw(json.dumps(event))
        except Exception:
            self.closed = True
            return False
        limit = self.faults.drop_after_events
        if limit is not None and len(self.sent) >= limit:
            self.dropped = True
            self._abort()
            return False
        await self.server._notify()
        return True

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
        """The item as events carry it: never with audio bytes (reference §3.1)."""
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
            await self.send_error(E.invalid_json(f"{exc.msg} at line {exc.lineno} column {exc.colno}"))
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
            await self.send_error(E.missing_required("type") if kind is None else E.invalid_type("type", "a string", kind), event)
            return
        if kind in self.faults.error_on:
            from foreman.testing.mock_realtime.faults import as_error_event

            await self.send(as_error_event(self.faults.error_on[kind]))
            return
        handler = HANDLERS.get(kind)
        if handler is None:
            await self.send_error(E.unknown_event_type(kind), event)
            return
        try:
            await handler(self, event)
        except ClientError as exc:
            await self.send_error(exc.body, event)

    async def handle_binary(self) -> None:
        await self.send_error(E.binary_frame())

    @staticmethod
    def _only(event: Event, allowed: tuple[str, ...]) -> None:
        for key in event:
            if key not in ("type", "event_id", *allowed):
                raise ClientError(E.unknown_parameter(key))

    async def on_session_update(self, event: Event) -> None:
        if err := validate_session_update(event, self.config):
            raise ClientError(err)
        update = event["session"]
        out = (update.get("audio") or {}).get("output") or {}
        if "voice" in out and out["voice"] != self.config["audio"]["output"]["voice"] and self.voice_locked:
            raise ClientError(E.voice_locked())
        old_in = self.config["audio"]["input"]
        self.config = apply_update(self.config, update)
        new_in = self.config["audio"]["input"]
        if new_in["format"] != old_in["format"] or new_in["turn_detection"] != old_in["turn_detection"]:
            self.detector = None  # rebuilt on the next append with the new settings
        public = copy.deepcopy(self.config)
        await self.send({"type": "session.updated", "session": public})

    # input audio -------------------------------------------------------------------------

    async def on_append(self, event: Event) -> None:
        self._only(event, ("audio",))
        audio = event.get("audio")
        if audio is None:
            raise ClientError(E.missing_required("audio"))
        if not isinstance(audio, str):
            raise ClientError(E.invalid_type("audio", "a string", audio))
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ClientError(E.error("invalid_value", f"Invalid 'audio': not valid base64 ({exc}).", param="audio")) from exc
        if len(data) > MAX_APPEND_BYTES:
            raise ClientError(E.error("invalid_value", "Audio chunk exceeds the 15 MiB limit.", param="audio"))
        fmt = fmt_of(self.config["audio"]["input"]["format"])
        if len(data) % fmt.bytes_per_sample:
            data = data[: len(data) - len(data) % fmt.bytes_per_sample]
        if not self.buffer:
            self.buffer_start_ms = self.audio_ms
        self.buffer += data
        td = self.config["audio"]["input"]["turn_detection"]
        if td is not None and (self.detector is None or self.detector.fmt != fmt):
            self.detector = TurnDetector(td, fmt, self.audio_ms)
        self.audio_ms += fmt.ms_for_bytes(len(data))
        if td is None or self.detector is None:
            return
        for turn in self.detector.feed(data):
            if turn.kind == "start":
                await self._speech_started(turn.ms, td)
            else:
                await self._speech_stopped(turn.ms, td)

    async def _speech_started(self, ms: int, td: dict[str, Any]) -> None:
        padding = int(td.get("prefix_padding_ms", 300)) if td["type"] == "server_vad" else 300
        start = max(0, ms - padding)
        self.speech_item = ids.item_id()
        self.speech_start_ms = start
        await self.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": start, "item_id": self.speech_item})
        if td.get("interrupt_response", True) and self.active is not None:
            self.active.cancel("turn_detected")

    async def _speech_stopped(self, ms: int, td: dict[str, Any]) -> None:
        item_id = self.speech_item or ids.item_id()
        self.speech_item = None
        await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": item_id})
        fmt = fmt_of(self.config["audio"]["input"]["format"])
        # keep only the turn's audio (from the padded start) in the committed item
        skip = fmt.bytes_for_ms(max(0.0, self.speech_start_ms - self.buffer_start_ms))
        del self.buffer[:skip]
        await self._commit(item_id)
        if td.get("create_response", True):
            if self.active is not None:
                await self.send_error(E.active_response(self.active.id))
            else:
                self.start_response({})

    async def _commit(self, item_id: str) -> None:
        audio = bytes(self.buffer)
        self.buffer.clear()
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None, "audio": base64.b64encode(audio).decode()}],
        }
        prev = self.add_item(item)
        self.audio_turns[item_id] = len(self.audio_turns) + 1
        await self.send({"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": item_id})
        await self.send({"type": "conversation.item.added", "previous_item_id": prev, "item": self.public_item(item)})
        await self.send({"type": "conversation.item.done", "previous_item_id": prev, "item": self.public_item(item)})

    async def on_commit(self, event: Event) -> None:
        self._only(event, ())
        fmt = fmt_of(self.config["audio"]["input"]["format"])
        buffered = fmt.ms_for_bytes(len(self.buffer))
        if buffered < 100:
            raise ClientError(E.commit_empty(buffered))
        if self.detector is not None:
            self.detector = None  # a manual commit ends whatever turn VAD was tracking
        item_id = self.speech_item or ids.item_id()
        self.speech_item = None
        await self._commit(item_id)

    async def on_clear(self, event: Event) -> None:
        self._only(event, ())
        self.buffer.clear()
        self.detector = None
        self.speech_item = None
        await self.send({"type": "input_audio_buffer.cleared"})

    # conversation items --------------------------------------------------------------------

    async def on_item_create(self, event: Event) -> None:
        self._only(event, ("item", "previous_item_id"))
        item = event.get("item")
        if item is None:
            raise ClientError(E.missing_required("item"))
        if not isinstance(item, dict):
            raise ClientError(E.invalid_type("item", "an object", item))
        prev_id = event.get("previous_item_id")
        if prev_id is not None and prev_id != "root" and prev_id not in self.items:
            raise ClientError(
                E.error(
                    "invalid_value",
                    f"Error adding item: the previous item with id '{prev_id}' does not exist.",
                    param="previous_item_id",
                )
            )
        if err := _check_item(item):
            raise ClientError(err)
        stored = _normalise_item(item)
        if stored["id"] in self.items:
            raise ClientError(
                E.error("invalid_value", f"Item with id '{stored['id']}' already exists.", param="item.id")
            )
        prev = self.add_item(stored, prev_id)
        await self.send({"type": "conversation.item.added", "previous_item_id": prev, "item": self.public_item(stored)})
        await self.send({"type": "conversation.item.done", "previous_item_id": prev, "item": self.public_item(stored)})

    def _item(self, event: Event, action: str, code: str) -> dict[str, Any]:
        item_id = event.get("item_id")
        if item_id is None:
            raise ClientError(E.missing_required("item_id"))
        if not isinstance(item_id, str):
            raise ClientError(E.invalid_type("item_id", "a string", item_id))
        if item_id not in self.items:
            raise ClientError(E.item_not_found(action, code, item_id))
        return self.items[item_id]

    async def on_item_retrieve(self, event: Event) -> None:
        self._only(event, ("item_id",))
        item = copy.deepcopy(self._item(event, "retrieving", "item_retrieve_invalid_item_id"))
        sent = self.audio_sent.get(item["id"])
        if sent is not None:
            for part in item["content"]:
                if part.get("type") == "output_audio":
                    part["audio"] = base64.b64encode(bytes(sent)).decode()
        await self.send({"type": "conversation.item.retrieved", "item": item})

    async def on_item_delete(self, event: Event) -> None:
        self._only(event, ("item_id",))
        item = self._item(event, "deleting", "item_delete_invalid_item_id")
        del self.items[item["id"]]
        self.order.remove(item["id"])
        self.audio_sent.pop(item["id"], None)
        await self.send({"type": "conversation.item.deleted", "item_id": item["id"]})

    async def on_item_truncate(self, event: Event) -> None:
        self._only(event, ("item_id", "content_index", "audio_end_ms"))
        for key in ("item_id", "content_index", "audio_end_ms"):
            if key not in event:
                raise ClientError(E.missing_required(key))
        end = event["audio_end_ms"]
        index = event["content_index"]
        for key, value in (("audio_end_ms", end), ("content_index", index)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ClientError(E.invalid_type(key, "an integer", value))
            if value < 0:
                raise ClientError(E.out_of_range(key, value, low=0, high=None))
        item = self._item(event, "truncating", "item_truncate_invalid_item_id")
        if item.get("type") != "message" or item.get("role") != "assistant":
            raise ClientError(
                E.error("invalid_value", "Only assistant messages can be truncated.", param="item_id")
            )
        content = item.get("content") or []
        if index >= max(1, len(content)) or (content and content[index].get("type") != "output_audio"):
            raise ClientError(
                E.error("invalid_value", f"Content index {index} has no audio to truncate.", param="content_index")
            )
        sent = self.audio_sent.get(item["id"], bytearray())
        fmt = self.audio_fmt.get(item["id"]) or fmt_of(self.config["audio"]["output"]["format"])
        available = int(fmt.ms_for_bytes(len(sent)))
        if end > available:
            raise ClientError(E.truncate_too_far(available, end))
        del sent[fmt.bytes_for_ms(end) :]
        if content:
            content[index]["transcript"] = ""  # the service drops the unheard transcript (§2)
        await self.send(
            {"type": "conversation.item.truncated", "item_id": item["id"], "content_index": index, "audio_end_ms": end}
        )

    # responses -----------------------------------------------------------------------------

    async def on_response_create(self, event: Event) -> None:
        self._only(event, ("response",))
        params = event.get("response") or {}
        if err := RESPONSE_PARAMS("response", params):
            raise ClientError(err)
        out_of_band = params.get("conversation") == "none"
        if not out_of_band and self.active is not None:
            raise ClientError(E.active_response(self.active.id))
        self.start_response(params)

    def start_response(self, params: dict[str, Any]) -> ActiveResponse:
        in_conv = params.get("conversation") != "none"
        resp = ActiveResponse(ids.response_id(), in_conv, dict(params))
        reply = self.server.scenario.choose(self.current_turn(params), self.rule_hits)
        if in_conv:
            self.active = resp
        else:
            self.side_responses.add(resp)
        resp.task = asyncio.create_task(Responder(self, resp, reply).run(), name=f"mock-{resp.id}")
        return resp

    def response_finished(self, resp: ActiveResponse) -> None:
        if self.active is resp:
            self.active = None
        self.side_responses.discard(resp)

    async def on_response_cancel(self, event: Event) -> None:
        self._only(event, ("response_id",))
        wanted = event.get("response_id")
        target = self.active
        if wanted is not None:
            target = next((r for r in (self.active, *self.side_responses) if r and r.id == wanted), None)
        if target is None or target.cancelled:
            raise ClientError(E.cancel_not_active())
        target.cancel("client_cancelled")
        if target.task is not None:
            # the reply to the cancel is that response's `response.done`; wait for it so the
            # order on the wire is deterministic
            await asyncio.shield(target.task)

    def current_turn(self, params: dict[str, Any]) -> Turn:
        """What the response answers: the last user or tool-output item (reference §4)."""
        instructions = params.get("instructions")
        items = params.get("input")
        candidates = (
            [_normalise_item(i) for i in items if isinstance(i, dict)]
            if isinstance(items, list)
            else [self.items[i] for i in self.order]
        )
        for item in reversed(candidates):
            kind, role = item.get("type"), item.get("role")
            if kind == "message" and role == "system":
                continue
            if kind == "message" and role == "user":
                texts = [p.get("text", "") for p in item.get("content", []) if p.get("type") == "input_text"]
                if texts:
                    return Turn("text", text=" ".join(texts), instructions=instructions)
                return Turn("audio", audio_turn=self.audio_turns.get(item["id"], 0), instructions=instructions)
            if kind == "function_call_output":
                name = next(
                    (i.get("name") for i in self.items.values() if i.get("type") == "function_call" and i.get("call_id") == item.get("call_id")),
                    None,
                )
                return Turn("tool_output", tool_name=name, instructions=instructions)
            break
        return Turn("none", instructions=instructions)

    # lifecycle -----------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop streaming (the connection is closing)."""
        self.closed = True
        for resp in (self.active, *self.side_responses):
            if resp is not None and resp.task is not None:
                resp.cancel("client_cancelled")
                resp.task.cancel()
        tasks = [r.task for r in (self.active, *self.side_responses) if r is not None and r.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


_ITEM_TYPES = ("message", "function_call", "function_call_output")


def _check_item(item: dict[str, Any]) -> E.ErrorBody | None:
    """The checks the service makes on a client-created item (reference §2.2)."""
    kind = item.get("type")
    if kind is None:
        return E.missing_required("item.type")
    if kind not in _ITEM_TYPES:
        return E.invalid_value("item.type", kind, _ITEM_TYPES)
    if kind == "function_call_output":
        for key in ("call_id", "output"):
            if key not in item:
                return E.missing_required(f"item.{key}")
            if not isinstance(item[key], str):
                return E.invalid_type(f"item.{key}", "a string", item[key])
        return None
    if kind == "function_call":
        for key in ("name", "arguments"):
            if key not in item:
                return E.missing_required(f"item.{key}")
        return None
    role = item.get("role")
    if role not in ("user", "system", "assistant"):
        return E.invalid_value("item.role", role, ("user", "system", "assistant"))
    content = item.get("content")
    if not isinstance(content, list):
        return E.invalid_type("item.content", "an array", content)
    allowed = {
        "user": ("input_text", "input_audio", "input_image"),
        "system": ("input_text",),
        "assistant": ("output_text",),
    }[role]
    for i, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype not in allowed:
            # observed wording: "Invalid value: 'input_text'. Value must be 'output_text'."
            msg = f"Invalid value: '{ptype}'. Value must be " + " or ".join(f"'{a}'" for a in allowed) + "."
            if role == "assistant" and ptype == "output_audio":
                msg = "Assistant audio messages cannot be created; use output_text."
            return E.error("invalid_value", msg, param=f"item.content[{i}].type")
    return None


def _normalise_item(item: dict[str, Any]) -> dict[str, Any]:
    stored = copy.deepcopy(item)
    stored.setdefault("id", ids.item_id())
    stored.setdefault("object", "realtime.item")
    stored.setdefault("status", "completed")
    return stored


HANDLERS: dict[str, Handler] = {
    "session.update": MockSession.on_session_update,
    "input_audio_buffer.append": MockSession.on_append,
    "input_audio_buffer.commit": MockSession.on_commit,
    "input_audio_buffer.clear": MockSession.on_clear,
    "conversation.item.create": MockSession.on_item_create,
    "conversation.item.retrieve": MockSession.on_item_retrieve,
    "conversation.item.delete": MockSession.on_item_delete,
    "conversation.item.truncate": MockSession.on_item_truncate,
    "response.create": MockSession.on_response_create,
    "response.cancel": MockSession.on_response_cancel,
}
