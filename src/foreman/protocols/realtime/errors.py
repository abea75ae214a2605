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


# Why opening (or re-opening) a session failed, as `BackendError.code`, when trying again
# cannot help: the key, the account, the URL, the model or the configuration is wrong.
FATAL_CONNECT_CODES = frozenset(
    {
        "http_400",
        "http_401",
        "http_403",
        "http_404",
        "bad_url",
        "dns",
        "format_mismatch",
        "invalid_api_key",
        "insufficient_quota",
        "beta_api_shape_disabled",
        "missing_model",
        *CONFIG_REJECTED_CODES,
    }
)
# Close codes that say the same would happen again: protocol or policy violations, an event
# over our size cap (1009), and the
# application range (3000 after `invalid_api_key`, 4000 after `beta_api_shape_disabled`).
_FATAL_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 1009, 1010})


def reconnect_worthwhile(*, close_code: int | None = None, error_code: str | None = None) -> bool:
    """After a lost connection (`close_code`, None when it dropped without a close frame) or a
    failed attempt to open one (`error_code`, a `BackendError.code`): is trying again
    worthwhile? A normal close (1000) counts as worthwhile: the service ends a session that
    way at its time limit, and a new session can carry the conversation on."""
    if error_code is not None and (error_code in FATAL_CONNECT_CODES or error_code in FATAL_CODES):
        return error_code == "session_expired"
    if close_code is None:
        return True
    return close_code not in _FATAL_CLOSE_CODES and not 3000 <= close_code <= 4999
