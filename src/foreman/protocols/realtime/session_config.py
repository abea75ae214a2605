"""Build the GA `session.update` from config plus start overrides. Shape:
https://platform.openai.com/docs/api-reference/realtime-client-events/session/update.

`session_options_from_config(rt, **overrides)` gives a `SessionOptions`;
`build_session_update(opts)` gives the `SessionUpdate` to send right after `session.created`.
Every setting the service has a disputed default for is sent explicitly: `silence_duration_ms`
(https://platform.openai.com/docs/guides/realtime-vad says 500 ms; the live service's
`session.created` showed 200 ms), and `null` for transcription / noise reduction when off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field

from foreman.audio.formats import AudioFormat
from foreman.exceptions import ConfigError
from foreman.protocols.realtime.client_events import SessionUpdate
from foreman.protocols.realtime.wire_formats import format_to_wire

__all__ = [
    "BETA_RESPONSE_FIELDS",
    "BETA_SESSION_FIELDS",
    "Eagerness",
    "NoiseReduction",
    "OutputModality",
    "RealtimeSettings",
    "SessionOptions",
    "TurnDetection",
    "TurnDetectionType",
    "build_session_update",
    "check_ga_response",
    "check_ga_session",
    "session_options_from_config",
]

# Beta field -> its GA home in the `session.update` shape above. The service answers these with
# `unknown_parameter` (or, with the beta header, `beta_api_shape_disabled`), so refuse them here.
BETA_SESSION_FIELDS = {
    "modalities": "output_modalities",
    "voice": "audio.output.voice",
    "input_audio_format": "audio.input.format",
    "output_audio_format": "audio.output.format",
    "input_audio_transcription": "audio.input.transcription",
    "input_audio_noise_reduction": "audio.input.noise_reduction",
    "turn_detection": "audio.input.turn_detection",
    "speed": "audio.output.speed",
    "max_response_output_tokens": "max_output_tokens",
    "temperature": "(removed)",
}
BETA_RESPONSE_FIELDS = {
    "modalities": "output_modalities",
    "voice": "audio.output.voice",
    "output_audio_format": "audio.output.format",
    "max_response_output_tokens": "max_output_tokens",
    "temperature": "(removed)",
}

TurnDetectionType = Literal["server_vad", "semantic_vad", "none"]
Eagerness = Literal["low", "medium", "high", "auto"]
NoiseReduction = Literal["", "near_field", "far_field"]  # "" = off
OutputModality = Literal["audio", "text"]
_MODALITIES = (("audio",), ("text",))
_TOOL_CHOICES = ("auto", "none", "required")
# Keys of a GA function tool (RealtimeFunctionTool); anything else would be beta leakage or
# Foreman-internal metadata (risk, executor) that must not reach the wire.
_FUNCTION_TOOL_KEYS = ("type", "name", "description", "parameters")


class TurnDetection(BaseModel):
    """`audio.input.turn_detection`. `type="none"` means manual turns (push-to-talk).

    The one definition: `[realtime.turn_detection]` in the config file is validated as this
    model. Construction validates; a bad value raises pydantic's `ValidationError`.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, allow_inf_nan=False, hide_input_in_errors=True
    )

    type: TurnDetectionType = "server_vad"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    prefix_padding_ms: int = Field(default=300, ge=0)
    # Sources disagree on the service default (200 vs 500 ms), so it is always sent.
    silence_duration_ms: int = Field(default=500, ge=0)
    idle_timeout_ms: int | None = Field(default=None, gt=0)
    eagerness: Eagerness = "auto"
    create_response: bool = True
    interrupt_response: bool = True

    def to_wire(self) -> dict[str, Any] | None:
        """The GA object: server_vad and semantic_vad take different fields; none is null."""
        if self.type == "none":
            return None
        if self.type == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": self.eagerness,
                "create_response": self.create_response,
                "interrupt_response": self.interrupt_response,
            }
        wire: dict[str, Any] = {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }
        if self.idle_timeout_ms is not None:  # server_vad only
            wire["idle_timeout_ms"] = self.idle_timeout_ms
        return wire


@dataclass(frozen=True)
class SessionOptions:
    """Everything Foreman sets on a Realtime session. Build with `session_options_from_config`."""

    model: str
    instructions: str
    voice: str
    input_format: AudioFormat
    output_format: AudioFormat
    output_modalities: tuple[str, ...] = ("audio",)
    turn_detection: TurnDetection = field(default_factory=TurnDetection)
    transcription_model: str = ""  # "" = input transcription off
    transcription_language: str = ""
    noise_reduction: str = ""  # "" | near_field | far_field
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str = "auto"  # auto | none | required | the name of one function

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("realtime model must not be empty")
        if tuple(self.output_modalities) not in _MODALITIES:
            raise ConfigError(
                'output_modalities must be ["audio"] or ["text"], '
                f"got {list(self.output_modalities)}"
            )
        if self.noise_reduction not in get_args(NoiseReduction):
            raise ConfigError(
                "noise_reduction must be near_field, far_field or empty, "
                f"got {self.noise_reduction!r}"
            )
        # Fail now, not at send time: only pcm16@24k and G.711@8k exist on the wire.
        format_to_wire(self.input_format)
        format_to_wire(self.output_format)


class RealtimeSettings(Protocol):
    """What `session_options_from_config` reads; `foreman.config.RealtimeConfig` is one."""

    @property
    def model(self) -> str: ...
    @property
    def instructions(self) -> str: ...
    @property
    def voice(self) -> str: ...
    @property
    def audio_out_format(self) -> str: ...
    @property
    def output_modalities(self) -> Sequence[str]: ...
    @property
    def turn_detection(self) -> TurnDetection: ...
    @property
    def transcription_model(self) -> str: ...
    @property
    def transcription_language(self) -> str: ...
    @property
    def noise_reduction(self) -> str: ...


def session_options_from_config(rt: RealtimeSettings, **overrides: Any) -> SessionOptions:
    """`SessionOptions` from the `[realtime]` config, with start-time overrides.

    Overrides are SessionOptions field names (model, voice, instructions, input_format,
    output_format, tools, tool_choice, turn_detection, ...). A `None` override means "keep the
    config value", so an API body's optional fields can be passed straight through. Formats may
    be given as `AudioFormat` or as a name (`pcm16`, `g711_ulaw`, `audio/pcma`, ...); tools as
    any iterable of dicts; turn_detection as a `TurnDetection` or a mapping of its fields.
    """
    valid = {f.name for f in dataclasses.fields(SessionOptions)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise TypeError(f"unknown session option(s): {', '.join(unknown)}")
    model_format = AudioFormat.from_name(rt.audio_out_format)
    values: dict[str, Any] = {
        "model": rt.model,
        "instructions": rt.instructions,
        "voice": rt.voice,
        # `audio_out_format` is the model's format in both directions (config.py); the
        # endpoint's own rate (`audio_in_hz`) is the audio layer's concern, not the wire's.
        "input_format": model_format,
        "output_format": model_format,
        "output_modalities": tuple(rt.output_modalities),
        "turn_detection": rt.turn_detection,
        "transcription_model": rt.transcription_model,
        "transcription_language": rt.transcription_language,
        "noise_reduction": rt.noise_reduction,
    }
    for key, value in overrides.items():
        if value is not None:
            values[key] = _coerce_override(key, value)
    return SessionOptions(**values)


def _coerce_override(key: str, value: Any) -> Any:
    if key in ("input_format", "output_format") and isinstance(value, str):
        return AudioFormat.from_name(value)
    if key in ("tools", "output_modalities"):
        return tuple(value)
    if key == "turn_detection" and isinstance(value, Mapping):
        return TurnDetection.model_validate(value)
    return value


def build_session_update(opts: SessionOptions, *, event_id: str | None = "cfg-1") -> SessionUpdate:
    """The GA `session.update` for `opts`. Send it after `session.created`.

    The default `event_id` lets an `error` be matched to this update: a rejected update
    applies nothing, so the session treats it as fatal before the session is configured.
    """
    audio_input: dict[str, Any] = {
        "format": format_to_wire(opts.input_format),
        "transcription": _transcription(opts),
        "noise_reduction": {"type": opts.noise_reduction} if opts.noise_reduction else None,
        "turn_detection": opts.turn_detection.to_wire(),
    }
    session: dict[str, Any] = {
        "type": "realtime",
        "model": opts.model,
        "output_modalities": list(opts.output_modalities),
        "instructions": opts.instructions,
        "audio": {
            "input": audio_input,
            "output": {"format": format_to_wire(opts.output_format), "voice": _voice(opts.voice)},
        },
        "tools": [_tool(t) for t in opts.tools],
        "tool_choice": _tool_choice(opts.tool_choice),
    }
    return SessionUpdate(session=session, event_id=event_id)


def _transcription(opts: SessionOptions) -> dict[str, Any] | None:
    if not opts.transcription_model:
        return None
    out: dict[str, Any] = {"model": opts.transcription_model}
    if opts.transcription_language:
        out["language"] = opts.transcription_language
    return out


def _voice(voice: str) -> str | dict[str, str]:
    # A custom voice is referenced by id; built-in voices are plain names.
    return {"id": voice} if voice.startswith("voice_") else voice


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(tool, Mapping):
        raise ConfigError(f"a tool must be an object, got {type(tool).__name__}")
    kind = tool.get("type", "function")
    if kind == "mcp":  # MCP tools carry their own fields; pass them through unchanged
        return dict(tool)
    if kind != "function":
        raise ConfigError(f"tool type must be 'function' or 'mcp', got {kind!r}")
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a function tool needs a name: {dict(tool)!r}")
    out: dict[str, Any] = {"type": "function"}
    for key in _FUNCTION_TOOL_KEYS[1:]:
        if key in tool:
            out[key] = tool[key]
    out.setdefault("parameters", {"type": "object", "properties": {}})
    return out


def _tool_choice(choice: str) -> str | dict[str, str]:
    if choice in _TOOL_CHOICES:
        return choice
    if not choice:
        raise ConfigError("tool_choice must not be empty")
    return {"type": "function", "name": choice}  # force one named function


def check_ga_session(session: Mapping[str, Any]) -> None:
    """Refuse a `session.update` body the GA service would reject: no `type`, or beta fields.

    Raises ValueError naming the field and its GA replacement.
    """
    kind = session.get("type")
    if kind not in ("realtime", "transcription"):
        raise ValueError(
            f"session.update needs session.type 'realtime' or 'transcription', got {kind!r}"
        )
    _check_beta(session, BETA_SESSION_FIELDS, "session")


def check_ga_response(response: Mapping[str, Any]) -> None:
    """Refuse beta fields in `response.create.response` Raises ValueError."""
    _check_beta(response, BETA_RESPONSE_FIELDS, "response")


def _check_beta(obj: Mapping[str, Any], table: Mapping[str, str], where: str) -> None:
    for key in obj:
        if key in table:
            ga = table[key]
            hint = "it was removed in GA" if ga.startswith("(") else f"use '{where}.{ga}'"
            raise ValueError(f"beta field '{where}.{key}' is not GA; {hint}")
