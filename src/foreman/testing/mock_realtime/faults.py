"""Fault injection for the mock server: what goes wrong, and when."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults applied to sessions of a `MockRealtimeServer`.

    Per connection (only the first `faulty_connections` connections when that is set, so a
    client that reconnects gets a healthy session; None: every connection):

    * `drop_after_events`: after this many server events on a connection, the TCP connection
      is closed without a WebSocket close frame (the client sees 1006), as a network drop
      would; the events before it are delivered.
    * `drop_between=(lo, hi)`: the same, after a number of events drawn uniformly in
      [lo, hi] for each connection from `seed` (the same seed gives the same points).
    * `freeze_after_events`: after this many server events the connection goes silent: the
      mock sends nothing more and stops reading, so pings go unanswered (a hung service).
    * `drop_on_client_event=(type, text)`: GPT-Live only: the connection is dropped (1006)
      as soon as the client sends an event of `type` whose JSON contains `text` (e.g.
      `("session.instructions.append", "approval")`: while an approval is pending). The
      event is lost with the connection.

    On GPT-Live (`/v1/live/sessions`) every server event counts, the output track's deltas
    (ten a second) included, and connections are counted among the Live ones.

    Server-wide:

    * `delay_deltas_ms`: extra wait before every `*.delta` event (a slow model).
    * `error_events`: `error` payloads (the inner `error` object, or a whole `error` event) sent
      right after `session.created`.
    * `error_on`: client event type -> `error` payload sent *instead of* handling that event
      (e.g. `{"response.create": {...}}` to make every response fail at the request).
    * `session_time_limit_s`: after this long the session gets `error` `session_expired`
      ("Your session hit the maximum duration of 60 minutes.") and is closed, as the service does.
      On GPT-Live: `session.started` names an `expires_at` this far ahead (rounded up to the
      second: the field is Unix seconds), and at it the session closes with reason "expired".
    * `stall_responses`: the first N responses stop after their first delta and never finish
      (until cancelled or the connection closes): a model frozen mid-reply.
    * `ignore_turns`: the first N committed audio turns get no response although turn
      detection asks for one: a model that does not answer.
    """

    drop_after_events: int | None = None
    drop_between: tuple[int, int] | None = None
    seed: int = 0
    freeze_after_events: int | None = None
    drop_on_client_event: tuple[str, str] | None = None
    faulty_connections: int | None = None
    delay_deltas_ms: int = 0
    error_events: list[dict[str, Any]] = field(default_factory=list)
    error_on: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    session_time_limit_s: float | None = None
    stall_responses: int = 0
    ignore_turns: int = 0

    def __post_init__(self) -> None:
        for name in ("drop_after_events", "freeze_after_events", "faulty_connections"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.drop_between is not None:
            lo, hi = self.drop_between
            if not 0 <= lo <= hi:
                raise ValueError("drop_between must be (lo, hi) with 0 <= lo <= hi")
        if self.drop_on_client_event is not None and len(self.drop_on_client_event) != 2:
            raise ValueError("drop_on_client_event must be (event type, text it contains)")
        if self.delay_deltas_ms < 0:
            raise ValueError("delay_deltas_ms must be >= 0")
        if self.stall_responses < 0 or self.ignore_turns < 0:
            raise ValueError("stall_responses and ignore_turns must be >= 0")
        if self.session_time_limit_s is not None and self.session_time_limit_s <= 0:
            raise ValueError("session_time_limit_s must be positive")

    def applies_to(self, connection: int) -> bool:
        """Do the per-connection faults apply to the `connection`-th one (0-based)?"""
        return self.faulty_connections is None or connection < self.faulty_connections

    def drop_point(self, connection: int) -> int | None:
        """After how many server events the `connection`-th connection is dropped."""
        if not self.applies_to(connection):
            return None
        if self.drop_between is not None:
            lo, hi = self.drop_between
            return random.Random(f"{self.seed}:{connection}").randint(lo, hi)
        return self.drop_after_events

    def freeze_point(self, connection: int) -> int | None:
        return self.freeze_after_events if self.applies_to(connection) else None


def as_error_event(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Accept either a whole `error` event or just its `error` object."""
    if payload.get("type") == "error" and "error" in payload:
        return dict(payload)
    body = {"type": "server_error", "code": None, "param": None, "event_id": None}
    body.update(payload)
    body.setdefault("message", "The server had an error while processing your request.")
    return {"type": "error", "error": body}
