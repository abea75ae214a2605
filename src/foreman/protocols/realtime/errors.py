"""Which Realtime `error` events matter (the `error` event:
https://platform.openai.com/docs/api-reference/realtime-server-events).

* harmless: nothing was lost and nothing needs doing (log at debug and carry on);
* recoverable: the request that caused it was not applied, the session goes on; the caller
  may retry or tell the user (e.g. `conversation_already_has_active_response`: queue the
  `response.create` and send it again after the next `response.done`);
* fatal: the session cannot continue; close it and report `message` as the last error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from foreman.protocols.realtime.client_events import ConversationItemTruncate, SessionUpdate

Severity = Literal["harmless", "recoverable", "fatal"]

# The session is over (or never worked) when these arrive.
FATAL_CODES = frozenset(
    {
        "beta_api_shape_disabled",  # followed by close code 4000
        "session_expired",  # the 60-minute session limit
        "invalid_api_key",
        "insufficient_quota",
    }
)

# Answers to requests that simply had nothing to act on.
HARMLESS_CODES = frozenset({"response_cancel_not_active", "input_audio_buffer_commit_empty"})

# Validation codes that, on a `session.update` sent before the session was configured, mean the
# whole configuration was rejected (a failed update applies none of its settings): Foreman
# cannot run on the service's defaults (wrong audio format, no tools), so that is fatal.
CONFIG_REJECTED_CODES = frozenset(
    {"missing_required_parameter", "unknown_parameter", "invalid_value", "invalid_type"}
)


# Close codes worth reconnecting after: the official SDK's list,
# https://github.com/openai/openai-python/blob/main/src/openai/types/websocket_reconnection.py.
# A new connection is a new session: nothing survives, replay context as text.
RECOVERABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})
# The live service closes with 4000 after `beta_api_shape_disabled` (observed).
BETA_REFUSED_CLOSE_CODE = 4000


@dataclass(frozen=True, slots=True)
class ErrorNotice:
    """A classified server `error`, emitted by `RealtimeSession.receive` after the event.

    `event_id` is the client event id the service echoed (`error.event_id`), if any;
    `client_event_type` is the type of that client event when the session sent it.
    """

    severity: Severity
    code: str | None
    message: str
    event_id: str | None
    param: str | None = None
    client_event_type: str | None = None

    @property
    def fatal(self) -> bool:
        return self.severity == "fatal"


def classify_error(
    code: str | None,
    *,
    client_event_type: str | None,
    configured: bool,
    param: str | None = None,
) -> Severity:
    """Severity of one error.

    `client_event_type` is the type of the client event the error answers (known when it
    echoed an event id we sent); `configured` is whether the first `session.updated` arrived.
    """
    if code in FATAL_CODES:
        return "fatal"
    if not configured:
        # Before the first session.updated, an error on our session.update (matched by the
        # echoed event id, or by a `session.*` param when no id came back) means the whole
        # configuration was rejected and the session cannot start.
        if client_event_type == SessionUpdate.type:
            return "fatal"
        if (
            client_event_type is None
            and code in CONFIG_REJECTED_CODES
            and (param or "").startswith("session")
        ):
            return "fatal"
    if code in HARMLESS_CODES:
        return "harmless"
    if client_event_type == ConversationItemTruncate.type:
        # Truncating audio that already finished playing (or an item already
        # cut shorter) changes nothing the user heard.
        return "harmless"
    return "recoverable"
