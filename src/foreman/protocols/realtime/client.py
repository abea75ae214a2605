"""`RealtimeClient`: what a Realtime client must send next, decided without I/O.

It wraps the `RealtimeSession` state machine (which checks and records every event) with
the client's own policy, and keeps an outbox in the manner of python-websockets'
`data_to_send()`: every command only queues text; the I/O layer sends whatever
`data_to_send()` returns, in order, after each command and after each received frame.

Decisions made here:

* The handshake: `session.update` goes out as soon as `session.created` arrives.
* One response at a time: `request_response()` while a response runs is deferred and sent
  when that response is done (the service answers a second `response.create` with
  `conversation_already_has_active_response`; if it does anyway, the request is deferred
  again). Several requests made meanwhile collapse into one; the last instructions win.
* Busy or idle: the assistant is busy from a queued `response.create` (or a server-created
  response) until no response runs and none is queued or deferred. `idle` is what a
  session waits for before hanging up or ending a text turn.
* Barge-in: `interrupt()` cancels the response only while it still streams, and truncates
  the item to what was heard, clamped to the audio that was received (never "already
  shorter than").

Audio appends bypass the outbox (`send_audio` returns the text at once): they are on the hot
path, nothing is ever deferred behind them, and the outbox is empty between commands.
Reference: https://platform.openai.com/docs/guides/realtime-conversations and
https://platform.openai.com/docs/api-reference/realtime-client-events.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Final

from foreman.protocols.realtime import client_events as ce
from foreman.protocols.realtime import items
from foreman.protocols.realtime import server_events as se
from foreman.protocols.realtime.errors import ErrorNotice
from foreman.protocols.realtime.state import Phase, RealtimeSession

__all__ = ["RealtimeClient"]

_ALREADY_ACTIVE: Final = "conversation_already_has_active_response"
_CREATE_MEMORY: Final = 16  # recent creates whose bodies a refusal can still defer


class RealtimeClient:
    """Client policy and outbox for one Realtime session. Feed every frame to `receive`;
    after it and after every command, send `data_to_send()`."""

    def __init__(
        self, session_update: ce.SessionUpdate | None = None, *, event_id_prefix: str = "fm-"
    ) -> None:
        self.session = RealtimeSession(event_id_prefix=event_id_prefix)
        self._update = session_update
        self._outbox: list[str] = []
        self._creates_in_flight = 0  # response.create sent, response.created not yet seen
        # Bodies of recent creates by event id: a refused one is deferred with its own body.
        self._create_bodies: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._deferred: dict[str, Any] | None = None
        self._has_deferred = False

    # --- state ------------------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        """`session.updated` arrived: audio formats and tools are in force."""
        return self.session.phase is Phase.CONFIGURED

    @property
    def responding(self) -> bool:
        """A response of the default conversation is streaming."""
        return self.session.active_response_id is not None

    @property
    def idle(self) -> bool:
        """No response runs and none is queued or deferred."""
        return not self.responding and not self._has_deferred and self._creates_in_flight == 0

    @property
    def awaiting_response(self) -> bool:
        """A `response.create` went out and no `response.created` has answered it yet."""
        return self._creates_in_flight > 0

    @property
    def pending_output(self) -> bool:
        """Something is waiting in the outbox (cheap to ask after every frame)."""
        return bool(self._outbox)

    def data_to_send(self) -> list[str]:
        """Texts to send now, in order (the outbox is emptied)."""
        out, self._outbox = self._outbox, []
        return out

    # --- receiving --------------------------------------------------------------------------
    def receive(self, frame: str | bytes) -> list[object]:
        """Like `RealtimeSession.receive`; also queues what the frame calls for."""
        out = self.session.receive(frame)
        event = out[0]
        if isinstance(event, se.SessionCreated) and self._update is not None:
            update, self._update = self._update, None
            self.queue(update)
        elif isinstance(event, se.ResponseCreated):
            if event.response.get("conversation_id", "") is not None and self._creates_in_flight:
                self._creates_in_flight -= 1
        elif isinstance(event, se.ResponseDone):
            self._release_deferred()
        elif isinstance(event, se.ErrorEvent):
            for notice in out[1:]:
                if (
                    isinstance(notice, ErrorNotice)
                    and notice.client_event_type == "response.create"
                ):
                    self._create_refused(notice)
        return out

    def _create_refused(self, notice: ErrorNotice) -> None:
        # That create was not applied: no response.created will answer it.
        self._creates_in_flight = max(0, self._creates_in_flight - 1)
        body = self._create_bodies.pop(notice.event_id, None) if notice.event_id else None
        if notice.code == _ALREADY_ACTIVE:
            # Asked again later; instructions of a request made meanwhile win (they are newer).
            if not self._has_deferred or self._deferred is None:
                self._deferred = body
            self._has_deferred = True
        self._release_deferred()

    def _release_deferred(self) -> None:
        if self._has_deferred and not self.responding and self._creates_in_flight == 0:
            body, self._deferred, self._has_deferred = self._deferred, None, False
            self._create(body)

    # --- commands ---------------------------------------------------------------------------
    def queue(self, event: ce.ClientEvent) -> None:
        """Check and record `event` (the session may refuse it: InvalidState), then queue it."""
        self._outbox.append(self.session.send(event))

    def send_audio(self, audio_b64: str) -> str:
        """The `input_audio_buffer.append` text for one chunk; send it at once."""
        return self.session.send_audio(audio_b64)

    def add_item(self, item: dict[str, Any]) -> None:
        self.queue(ce.ConversationItemCreate(item))

    def add_text(self, role: str, text: str) -> None:
        make = {
            "user": items.user_text_item,
            "assistant": items.assistant_text_item,
            "system": items.system_text_item,
        }[role]
        self.add_item(make(text))

    def request_response(self, instructions: str | None = None) -> None:
        """Ask for a response now, or as soon as the running one is done."""
        body = {"instructions": instructions} if instructions else None
        if self.responding or self._creates_in_flight:
            self._has_deferred = True
            if body is not None or self._deferred is None:
                self._deferred = body
            return
        self._create(body)

    def retry_response(self, instructions: str | None = None) -> None:
        """The service never answered the last `response.create` (a watchdog's nudge): forget
        it and ask again (a request deferred behind it goes with this one); a late answer to
        the old one is refused as already active and deferred like any other."""
        self._creates_in_flight = 0
        if instructions is None and self._has_deferred:
            instructions = (self._deferred or {}).get("instructions")
        self._deferred, self._has_deferred = None, False  # this request carries them
        self.request_response(instructions)

    def _create(self, body: dict[str, Any] | None) -> None:
        self.queue(ce.ResponseCreate(body))  # may refuse (InvalidState): then nothing is sent
        self._creates_in_flight += 1
        event_id = json.loads(self._outbox[-1])["event_id"]
        self._create_bodies[event_id] = body
        if len(self._create_bodies) > _CREATE_MEMORY:
            self._create_bodies.popitem(last=False)

    def commit_turn(self) -> None:
        """Manual turns (no turn detection): the user's audio so far is one turn; answer it."""
        self.queue(ce.InputAudioBufferCommit())
        self.request_response()

    def interrupt(self, item_id: str | None, content_index: int, heard_ms: int | None) -> None:
        """The user talked over the assistant: cancel the response if it still streams, and
        cut `item_id` to `heard_ms` when that is less than what was received."""
        if self.responding:
            self.queue(ce.ResponseCancel())
        if item_id is not None and heard_ms is not None:
            truncate = self.session.clamp_truncate(item_id, content_index, heard_ms)
            if truncate is not None:
                self.queue(truncate)
