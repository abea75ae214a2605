"""Error payloads the mock sends, with the wording the real service uses.

Every helper returns the inner `error` object of an `error` server event
(https://platform.openai.com/docs/api-reference/realtime-server-events):
`{type, code, message, param, event_id}`. `event_id` echoes the
client's event id (null when the client sent none, as in the live trace). Messages marked
"observed" were seen verbatim in live GA traces or public client code; the others follow the
same house style and are the mock's best guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ErrorBody = dict[str, Any]


class ClientError(Exception):
    """A client event the service would reject; carries the `error` body to send."""

    def __init__(self, body: ErrorBody) -> None:
        super().__init__(body["message"])
        self.body = body


def only(event: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Raise ClientError(unknown_parameter) for a top-level field the event does not take."""
    for key in event:
        if key not in ("type", "event_id", *allowed):
            raise ClientError(unknown_parameter(key))


# The live service lists the accepted client event types in this order (observed).
CLIENT_EVENT_TYPES: tuple[str, ...] = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
)


def error(
    code: str | None,
    message: str,
    *,
    param: str | None = None,
    event_id: str | None = None,
    type: str = "invalid_request_error",
) -> ErrorBody:
    return {"type": type, "code": code, "message": message, "param": param, "event_id": event_id}


def quote_list(values: Sequence[object]) -> str:
    """`'a' and 'b'` / `'a', 'b', and 'c'`, as the service lists supported values."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def invalid_value(
    param: str, value: object, supported: Sequence[object] | None = None
) -> ErrorBody:
    msg = f"Invalid value: '{value}'."
    if supported:
        msg += f" Supported values are: {quote_list(supported)}."
    return error("invalid_value", msg, param=param)


def unknown_event_type(value: object) -> ErrorBody:
    # observed: "Invalid value: 'nope'. Supported values are: 'session.update', ..."
    return invalid_value("type", value, CLIENT_EVENT_TYPES)


def unknown_parameter(param: str) -> ErrorBody:
    # observed: "Unknown parameter: 'session.bogus_field'."
    return error("unknown_parameter", f"Unknown parameter: '{param}'.", param=param)


def missing_required(param: str) -> ErrorBody:
    # observed: "Missing required parameter: 'session.type'."
    return error(
        "missing_required_parameter", f"Missing required parameter: '{param}'.", param=param
    )


_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), "an unsupported value")


def invalid_type(param: str, expected: str, value: object) -> ErrorBody:
    # observed: "Invalid type for 'session.audio.input.format': expected an object, but got a
    # string instead."
    return error(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param=param,
    )


def out_of_range(param: str, value: float, *, low: float | None, high: float | None) -> ErrorBody:
    kind = "integer" if isinstance(value, int) else "decimal"
    if low is not None and value < low:
        return error(
            f"{kind}_below_min_value",
            f"Invalid '{param}': {kind} below minimum value. "
            f"Expected a value >= {low}, but got {value} instead.",
            param=param,
        )
    return error(
        f"{kind}_above_max_value",
        f"Invalid '{param}': {kind} above maximum value. "
        f"Expected a value <= {high}, but got {value} instead.",
        param=param,
    )


def invalid_json(detail: str) -> ErrorBody:
    # observed code and message prefix
    return error("invalid_json", f"Invalid event: failed to parse JSON value. {detail}")


def binary_frame() -> ErrorBody:
    # observed
    return error(
        "invalid_event", "Expected a text WebSocket message; binary frames are not supported."
    )


def beta_disabled() -> ErrorBody:
    # observed
    return error(
        "beta_api_shape_disabled",
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
    )


def missing_model() -> ErrorBody:
    # observed
    return error(
        "missing_model",
        "You must provide a model parameter, for example "
        "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
    )


def invalid_api_key() -> ErrorBody:
    return error(
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    )


def commit_empty(buffered_ms: float) -> ErrorBody:
    # observed
    return error(
        "input_audio_buffer_commit_empty",
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
    )


def active_response(response_id: str) -> ErrorBody:
    # observed
    return error(
        "conversation_already_has_active_response",
        f"Conversation already has an active response in progress: {response_id}. "
        "Wait until the response is finished before creating a new one.",
    )


def cancel_not_active() -> ErrorBody:
    # observed
    return error("response_cancel_not_active", "Cancellation failed: no active response found")


def truncate_too_far(available_ms: int, requested_ms: int) -> ErrorBody:
    # observed: "Audio content of 6350ms is already shorter than 8160ms"
    return error(
        "invalid_value",
        f"Audio content of {available_ms}ms is already shorter than {requested_ms}ms",
        param="audio_end_ms",
    )


def item_not_found(action: str, code: str, item_id: str, param: str = "item_id") -> ErrorBody:
    # observed for delete: "Error deleting item: the item with id 'yo' does not exist."
    return error(
        code, f"Error {action} item: the item with id '{item_id}' does not exist.", param=param
    )


def session_expired() -> ErrorBody:
    # observed
    return error("session_expired", "Your session hit the maximum duration of 60 minutes.")


def voice_locked() -> ErrorBody:
    # observed message
    return error(
        "invalid_value",
        "Cannot update a conversation's voice if assistant audio is present.",
        param="session.audio.output.voice",
    )
