"""Fault injection for the mock server: what goes wrong, and when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults applied to every session of a `MockRealtimeServer`.

    * `drop_after_events`: after this many server events on a connection, the TCP connection
      is closed without a WebSocket close frame (the client sees 1006), as a network drop
      would; the events before it are delivered.
    * `delay_deltas_ms`: extra wait before every `*.delta` event (a slow model).
    * `error_events`: `error` payloads (the inner `error` object, or a whole `error` event) sent
      right after `session.created`.
    * `error_on`: client event type -> `error` payload sent *instead of* handling that event
      (e.g. `{"response.create": {...}}` to make every response fail at the request).
    * `session_time_limit_s`: after this long the session gets `error` `session_expired`
      ("Your session hit the maximum duration of 60 minutes.") and is closed, as the service does.
    """

    drop_after_events: int | None = None
    delay_deltas_ms: int = 0
    error_events: list[dict[str, Any]] = field(default_factory=list)
    error_on: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    session_time_limit_s: float | None = None

    def __post_init__(self) -> None:
        if self.drop_after_events is not None and self.drop_after_events < 0:
            raise ValueError("drop_after_events must be >= 0")
        if self.delay_deltas_ms < 0:
            raise ValueError("delay_deltas_ms must be >= 0")
        if self.session_time_limit_s is not None and self.session_time_limit_s <= 0:
            raise ValueError("session_time_limit_s must be positive")


def as_error_event(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Accept either a whole `error` event or just its `error` object."""
    if payload.get("type") == "error" and "error" in payload:
        return dict(payload)
    body = {"type": "server_error", "code": None, "param": None, "event_id": None}
    body.update(payload)
    body.setdefault("message", "The server had an error while processing your request.")
    return {"type": "error", "error": body}
