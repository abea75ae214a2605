"""Checks and shapes of the GPT-Live wire, for the mock (no `openai` import at run time).

The session config is strict (unknown fields are rejected, as the service does); every
append needs `delegation_id` (null under Responses delegation). Field names follow the
`openai.types.live` unions of the official Python SDK.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from foreman.audio.formats import PCM16_24K, PCMA_8K, PCMU_8K, AudioFormat
from foreman.testing.mock_realtime import errors as E
from foreman.testing.mock_realtime import ids
from foreman.testing.mock_realtime.errors import ClientError

CLIENT_EVENT_TYPES: tuple[str, ...] = (
    "session.start",
    "session.update",
    "session.input_audio.append",
    "session.input_audio.mute",
    "session.input_audio.unmute",
    "session.output_audio.fixture.play",
    "session.instructions.append",
    "session.thinking.append",
    "session.commentary.append",
    "decision.create",
    "decision.item.create",
    "decision.item.delete",
    "response.item.create",
    "response.create",
    "session.close",
)
SESSION_KEYS = {
    "model", "instructions", "input", "audio", "delegation", "store", "triggers", "client",
}  # fmt: skip
RESPONSES_KEYS = {
    "model", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
    "reasoning", "text", "service_tier",
}  # fmt: skip
SESSION_SECONDS = 3600  # the mock's expiry; the service does not document its limit


def unknown_event(kind: object) -> E.ErrorBody:
    return E.error(
        "unknown_event_type",
        f"Invalid event type {kind!r}. Supported client events: {', '.join(CLIENT_EVENT_TYPES)}.",
        param="type",
    )


def _only(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise ClientError(E.unknown_parameter(f"{where}.{key}"))


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ClientError(E.invalid_type(param, "an object", value))
    return value


def audio_format(obj: Any) -> AudioFormat:
    fmt = _object(obj, "session.audio.format")
    _only(fmt, {"type", "rate"}, "session.audio.format")
    kind, rate = fmt.get("type"), fmt.get("rate")
    if kind == "audio/pcm" and rate in (16000, 24000):
        return PCM16_24K if rate == 24000 else AudioFormat.from_name("pcm16", 16000)
    if kind in ("audio/pcmu", "audio/pcma") and rate == 8000:
        return PCMU_8K if kind == "audio/pcmu" else PCMA_8K
    raise ClientError(
        E.invalid_value(
            "session.audio.format",
            fmt,
            ["audio/pcm@16000", "audio/pcm@24000", "audio/pcmu@8000", "audio/pcma@8000"],
        )
    )


def check_session(session: Any) -> tuple[dict[str, Any], AudioFormat]:
    """The `session` of `session.start`: the resolved config and the audio format."""
    cfg = _object(session, "session")
    _only(cfg, SESSION_KEYS, "session")
    if not isinstance(cfg.get("model"), str) or not cfg["model"]:
        raise ClientError(E.missing_required("session.model"))
    audio = _object(cfg.get("audio", {}), "session.audio")
    _only(audio, {"format", "output"}, "session.audio")
    fmt = audio_format(audio["format"]) if "format" in audio else PCM16_24K
    output = _object(audio.get("output", {}), "session.audio.output")
    _only(output, {"voice"}, "session.audio.output")
    delegation = cfg.get("delegation")
    if delegation is not None:
        delegation = _object(delegation, "session.delegation")
        kind = delegation.get("type")
        if kind not in ("client", "responses", "decisions"):
            raise ClientError(
                E.invalid_value(
                    "session.delegation.type", kind, ["client", "responses", "decisions"]
                )
            )
        if kind == "responses":
            responses = _object(delegation.get("responses"), "session.delegation.responses")
            _only(responses, RESPONSES_KEYS, "session.delegation.responses")
            if not isinstance(responses.get("model"), str):
                raise ClientError(E.missing_required("session.delegation.responses.model"))
    return cfg, fmt


def resource(
    session_id: str, cfg: Mapping[str, Any], fmt: AudioFormat, expires_at: int | None = None
) -> dict[str, Any]:
    """The `SessionResource` snapshot (started, updated and closed all carry it)."""
    wire_fmt: dict[str, Any] = {
        "type": {"pcm16": "audio/pcm", "pcmu": "audio/pcmu", "pcma": "audio/pcma"}[
            str(fmt.encoding)
        ],
        "rate": fmt.sample_rate,
    }
    voice = ((cfg.get("audio") or {}).get("output") or {}).get("voice", "marin")
    out: dict[str, Any] = {
        "id": session_id,
        "expires_at": expires_at or int(time.time()) + SESSION_SECONDS,
        "model": cfg["model"],
        "status": "active",
        "audio": {"format": wire_fmt, "output": {"voice": voice}},
        "delegation": cfg.get("delegation"),
        "input": list(cfg.get("input") or []),
        "instructions": cfg.get("instructions", ""),
        "store": bool(cfg.get("store", False)),
        "triggers": list(cfg.get("triggers") or []),
    }
    return out


def response_snapshot(response_id: str, model: str, status: str) -> dict[str, Any]:
    """A Responses lifecycle snapshot as Live forwards it: `output`, `tools` empty,
    `instructions` null, no `input`."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": status,
        "output": [],
        "tools": [],
        "instructions": None,
        "parallel_tool_calls": False,
        "tool_choice": "auto",
    }


def function_call_item(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": ids.new_id("fc_"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }
