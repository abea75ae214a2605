"""GA session schema: validation of `session.update` and the effective session config.

The real service validates a `session.update` as a whole and applies nothing when any part is
wrong. `validate_session_update` returns the first error (or None); `apply_update` merges a
valid update into the effective config, normalising nested objects the way the service echoes
them in `session.updated`.

The schema mirrors `RealtimeSessionCreateRequest` of openai 3.51
(https://github.com/openai/openai-python/blob/main/src/openai/types/realtime/realtime_session_create_request.py),
written out here so the mock does not import `openai` at run time.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from foreman.testing.mock_realtime import errors as E

Check = Callable[[str, Any], "E.ErrorBody | None"]

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
SESSION_LIFETIME_S = 3600


# --- validator combinators ---------------------------------------------------------------


def string() -> Check:
    return lambda p, v: None if isinstance(v, str) else E.invalid_type(p, "a string", v)


def boolean() -> Check:
    return lambda p, v: None if isinstance(v, bool) else E.invalid_type(p, "a boolean", v)


def number(low: float | None = None, high: float | None = None, *, integer: bool = False) -> Check:
    def check(p: str, v: Any) -> E.ErrorBody | None:
        ok = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok:
            return E.invalid_type(p, "an integer" if integer else "a number", v)
        if (low is not None and v < low) or (high is not None and v > high):
            return E.out_of_range(p, v, low=low, high=high)
        return None

    return check


def enum(*values: Any) -> Check:
    def check(p: str, v: Any) -> E.ErrorBody | None:
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            return E.invalid_type(p, "one of " + ", ".join(f"'{x}'" for x in values), v)
        return None if v in values else E.invalid_value(p, v, values)

    return check


def nullable(inner: Check) -> Check:
    return lambda p, v: None if v is None else inner(p, v)


def any_value() -> Check:
    return lambda p, v: None


def array(item: Check) -> Check:
    def check(p: str, v: Any) -> E.ErrorBody | None:
        if not isinstance(v, list):
            return E.invalid_type(p, "an array", v)
        for i, x in enumerate(v):
            if err := item(f"{p}[{i}]", x):
                return err
        return None

    return check


def obj(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    def check(p: str, v: Any) -> E.ErrorBody | None:
        if not isinstance(v, dict):
            return E.invalid_type(p, "an object", v)
        for key in required:
            if key not in v:
                return E.missing_required(f"{p}.{key}")
        for key, value in v.items():
            if key not in fields:
                return E.unknown_parameter(f"{p}.{key}")
            if err := fields[key](f"{p}.{key}", value):
                return err
        return None

    return check


def tagged(variants: Mapping[str, Check], *, tag: str = "type", required: bool = True) -> Check:
    """An object discriminated by `tag`; the tag value must be one of `variants`."""

    def check(p: str, v: Any) -> E.ErrorBody | None:
        if not isinstance(v, dict):
            return E.invalid_type(p, "an object", v)
        if tag not in v:
            if required:
                return E.missing_required(f"{p}.{tag}")
            return None
        if not isinstance(v[tag], str):
            return E.invalid_type(f"{p}.{tag}", "a string", v[tag])
        if v[tag] not in variants:
            return E.invalid_value(f"{p}.{tag}", v[tag], list(variants))
        return variants[v[tag]](p, v)

    return check


def first_of(*checks: Check, expected: str) -> Check:
    """Accept the value when any check accepts it (a union of differently-typed shapes)."""

    def check(p: str, v: Any) -> E.ErrorBody | None:
        results = [c(p, v) for c in checks]
        if any(r is None for r in results):
            return None
        # prefer an error that points inside the value over a type mismatch at this level
        for r in results:
            if r is not None and r.get("code") != "invalid_type":
                return r
        return E.invalid_type(p, expected, v)

    return check


# --- the GA session ------------------------------------------------------------------------

_FORMAT = tagged(
    {
        "audio/pcm": obj({"type": any_value(), "rate": number(24000, 24000, integer=True)}),
        "audio/pcmu": obj({"type": any_value()}),
        "audio/pcma": obj({"type": any_value()}),
    }
)
_SERVER_VAD = obj(
    {
        "type": any_value(),
        "threshold": number(0.0, 1.0),
        "prefix_padding_ms": number(0, None, integer=True),
        "silence_duration_ms": number(0, None, integer=True),
        "idle_timeout_ms": nullable(number(0, None, integer=True)),
        "create_response": boolean(),
        "interrupt_response": boolean(),
    }
)
_SEMANTIC_VAD = obj(
    {
        "type": any_value(),
        "eagerness": enum("low", "medium", "high", "auto"),
        "create_response": boolean(),
        "interrupt_response": boolean(),
    }
)
_TRANSCRIPTION = obj(
    {
        "model": string(),
        "language": nullable(string()),
        "languages": nullable(array(string())),
        "keywords": nullable(array(string())),
        "prompt": nullable(string()),
        "delay": nullable(enum("minimal", "low", "medium", "high", "xhigh")),
    }
)
_NOISE = obj({"type": enum("near_field", "far_field"), "strength": number(0.0, 1.0)})
_VOICE = first_of(string(), obj({"id": string()}, required=("id",)), expected="a string or object")
_FUNCTION_TOOL = obj(
    {"type": any_value(), "name": string(), "description": string(), "parameters": any_value()}
)
_MCP_TOOL = obj(
    {
        k: any_value()
        for k in (
            "type",
            "server_label",
            "server_url",
            "connector_id",
            "tunnel_id",
            "allowed_tools",
            "require_approval",
            "headers",
            "authorization",
            "server_description",
            "defer_loading",
            "allowed_callers",
        )
    },
    required=("server_label",),
)
_TOOL = tagged({"function": _FUNCTION_TOOL, "mcp": _MCP_TOOL})
_TOOL_CHOICE = first_of(
    enum("auto", "none", "required"),
    tagged(
        {
            "function": obj({"type": any_value(), "name": string()}, required=("name",)),
            "mcp": obj(
                {"type": any_value(), "server_label": string(), "name": nullable(string())},
                required=("server_label",),
            ),
        }
    ),
    expected="a string or object",
)
_TRUNCATION = first_of(
    enum("auto", "disabled"),
    tagged(
        {
            "retention_ratio": obj(
                {
                    "type": any_value(),
                    "retention_ratio": number(0.0, 1.0),
                    "token_limits": obj({"post_instructions": number(0, None, integer=True)}),
                },
                required=("retention_ratio",),
            )
        }
    ),
    expected="a string or object",
)
_AUDIO = obj(
    {
        "input": obj(
            {
                "format": _FORMAT,
                "noise_reduction": nullable(_NOISE),
                "transcription": nullable(_TRANSCRIPTION),
                "turn_detection": nullable(
                    tagged({"server_vad": _SERVER_VAD, "semantic_vad": _SEMANTIC_VAD})
                ),
            }
        ),
        "output": obj(
            {"format": _FORMAT, "voice": _VOICE, "speed": number(0.25, 1.5)},
        ),
    }
)


def _modalities(p: str, v: Any) -> E.ErrorBody | None:
    if err := array(enum("text", "audio"))(p, v):
        return err
    if v not in (["audio"], ["text"]):
        return E.error(
            "invalid_value",
            f"Invalid modalities: {v!r}. Supported combinations are: ['text'] and ['audio'].",
            param=p,
        )
    return None


REALTIME_SESSION_FIELDS: dict[str, Check] = {
    "type": any_value(),
    "model": string(),
    "output_modalities": _modalities,
    "instructions": string(),
    "audio": _AUDIO,
    "include": nullable(array(enum("item.input_audio_transcription.logprobs"))),
    "tools": array(_TOOL),
    "tool_choice": _TOOL_CHOICE,
    "parallel_tool_calls": boolean(),
    "reasoning": obj({"effort": enum("minimal", "low", "medium", "high", "xhigh")}),
    "max_output_tokens": first_of(
        number(1, 4096, integer=True), enum("inf"), expected="an integer or 'inf'"
    ),
    "truncation": _TRUNCATION,
    "tracing": nullable(
        first_of(
            enum("auto"),
            obj({"workflow_name": string(), "group_id": string(), "metadata": any_value()}),
            expected="a string or object",
        )
    ),
    "prompt": nullable(
        obj({"id": string(), "version": string(), "variables": any_value()}, required=("id",))
    ),
}
_REALTIME_SESSION = obj(REALTIME_SESSION_FIELDS)

# What `response.create.response` accepts.
RESPONSE_PARAMS = obj(
    {
        "conversation": string(),
        "input": array(any_value()),
        "instructions": string(),
        "output_modalities": _modalities,
        "audio": obj({"output": obj({"format": _FORMAT, "voice": _VOICE})}),
        "tools": array(_TOOL),
        "tool_choice": _TOOL_CHOICE,
        "parallel_tool_calls": boolean(),
        "reasoning": obj({"effort": enum("minimal", "low", "medium", "high", "xhigh")}),
        "prompt": nullable(obj({"id": string(), "version": string(), "variables": any_value()})),
        "max_output_tokens": first_of(
            number(1, 4096, integer=True), enum("inf"), expected="an integer or 'inf'"
        ),
        "metadata": nullable(any_value()),
    }
)


def validate_session_update(
    event: Mapping[str, Any], current: Mapping[str, Any]
) -> E.ErrorBody | None:
    """The first problem with a `session.update` event, or None when it may be applied."""
    for key in event:
        if key not in ("type", "event_id", "session"):
            return E.unknown_parameter(key)
    if "session" not in event:
        return E.missing_required("session")
    session = event["session"]
    if not isinstance(session, dict):
        return E.invalid_type("session", "an object", session)
    if "type" not in session:
        return E.missing_required("session.type")
    kind = session["type"]
    if kind not in ("realtime", "transcription"):
        return E.invalid_value("session.type", kind, ["realtime", "transcription"])
    if kind != current.get("type"):
        return E.error(
            "invalid_value",
            f"Passing a {kind} session update event to a {current.get('type')} session is "
            "not allowed.",
            param="session.type",
        )
    if err := _REALTIME_SESSION("session", session):
        return err
    if "model" in session and session["model"] != current.get("model"):
        return E.error("invalid_value", "Cannot update a session's model.", param="session.model")
    return None


# --- effective config ------------------------------------------------------------------------

PCM24 = {"type": "audio/pcm", "rate": 24000}


def server_vad_defaults() -> dict[str, Any]:
    # The live session.created shows silence 200 ms (the VAD guide says 500).
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def semantic_vad_defaults() -> dict[str, Any]:
    return {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }


def default_session(model: str, *, now: float | None = None) -> dict[str, Any]:
    """The `session` object of `session.created`, as in the live trace."""
    created = int(now if now is not None else time.time())
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_" + secrets.token_hex(11),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": (
            "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. "
            "(Foreman mock realtime server.)"
        ),
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": created + SESSION_LIFETIME_S,
        "audio": {
            "input": {
                "format": dict(PCM24),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": server_vad_defaults(),
            },
            "output": {"format": dict(PCM24), "voice": "alloy", "speed": 1.0},
        },
        "include": None,
    }


def _normal_format(fmt: Mapping[str, Any]) -> dict[str, Any]:
    return dict(PCM24) if fmt["type"] == "audio/pcm" else {"type": fmt["type"]}


def _normal_turn_detection(td: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if td is None:
        return None
    base = server_vad_defaults() if td["type"] == "server_vad" else semantic_vad_defaults()
    base.update(td)
    return base


def _normal_transcription(tr: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if tr is None:
        return None
    base: dict[str, Any] = {"model": None, "language": None, "prompt": None}
    base.update(tr)
    return base


def apply_update(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The effective session after a validated update (partial: absent fields keep their value)."""
    merged = copy.deepcopy(dict(current))
    for key, value in update.items():
        if key == "audio":
            continue
        merged[key] = copy.deepcopy(value)
    audio = update.get("audio") or {}
    inp = audio.get("input") or {}
    out = audio.get("output") or {}
    m_in = merged["audio"]["input"]
    m_out = merged["audio"]["output"]
    if "format" in inp:
        m_in["format"] = _normal_format(inp["format"])
    if "noise_reduction" in inp:
        m_in["noise_reduction"] = copy.deepcopy(inp["noise_reduction"])
    if "transcription" in inp:
        m_in["transcription"] = _normal_transcription(inp["transcription"])
    if "turn_detection" in inp:
        m_in["turn_detection"] = _normal_turn_detection(inp["turn_detection"])
    if "format" in out:
        m_out["format"] = _normal_format(out["format"])
    for key in ("voice", "speed"):
        if key in out:
            m_out[key] = copy.deepcopy(out[key])
    return merged
