"""The `session.start` configuration for a Foreman session on GPT-Live.

Only fields the Live config has: model, instructions, startup text history (`input`), one
audio format for both directions (WebSocket only), the voice, and Responses delegation
holding Foreman's function tools (Realtime's function tool shape maps one to one onto the
Responses one). Nothing of Realtime (turn detection, transcription, modalities) may leak in:
the service rejects unknown fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from foreman.audio.formats import AudioFormat, Encoding
from foreman.exceptions import AudioFormatError

__all__ = ["LiveSessionOptions", "audio_format_to_wire", "build_session_config"]

MAX_HISTORY_MESSAGES = 128


@dataclass(frozen=True)
class LiveSessionOptions:
    model: str
    instructions: str
    audio_format: AudioFormat
    voice: str
    backend_model: str
    backend_instructions: str = ""
    tools: Sequence[Mapping[str, Any]] = ()
    history: Sequence[tuple[str, str]] = ()  # (user | assistant | system, text), oldest first
    parallel_tool_calls: bool = False
    acknowledgement_delay_ms: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def audio_format_to_wire(fmt: AudioFormat) -> dict[str, Any]:
    """Live's `audio.format`: PCM16 at 16 or 24 kHz, G.711 at 8 kHz, `rate` always given."""
    if fmt.encoding is Encoding.PCM16:
        if fmt.sample_rate not in (16000, 24000):
            raise AudioFormatError(
                f"GPT-Live takes PCM16 at 16000 or 24000 Hz, not {fmt.sample_rate} Hz"
            )
        return {"type": "audio/pcm", "rate": fmt.sample_rate}
    if fmt.sample_rate != 8000:
        raise AudioFormatError(f"GPT-Live takes G.711 at 8000 Hz, not {fmt.sample_rate} Hz")
    return {"type": "audio/pcmu" if fmt.encoding is Encoding.PCMU else "audio/pcma", "rate": 8000}


def function_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A Responses function tool from Foreman's (Realtime-shaped) tool definition."""
    out: dict[str, Any] = {"type": "function", "name": str(tool["name"])}
    if tool.get("description"):
        out["description"] = str(tool["description"])
    if tool.get("parameters") is not None:
        out["parameters"] = dict(tool["parameters"])
    return out


def _initial_item(role: str, text: str) -> dict[str, Any]:
    if role == "assistant":
        return {"role": "assistant", "content": [{"type": "output_text", "text": text}]}
    return {
        "role": "user" if role == "user" else "developer",
        "content": [{"type": "input_text", "text": text}],
    }


def build_session_config(opts: LiveSessionOptions) -> dict[str, Any]:
    responses: dict[str, Any] = {"model": opts.backend_model}
    if opts.backend_instructions:
        responses["instructions"] = opts.backend_instructions
    if opts.tools:
        responses["tools"] = [function_tool(t) for t in opts.tools]
        responses["parallel_tool_calls"] = opts.parallel_tool_calls
    delegation: dict[str, Any] = {"type": "responses", "responses": responses}
    if opts.acknowledgement_delay_ms is not None:
        delegation["acknowledgement_delay_ms"] = opts.acknowledgement_delay_ms
    config: dict[str, Any] = {
        "model": opts.model,
        "audio": {"format": audio_format_to_wire(opts.audio_format)},
        "delegation": delegation,
    }
    if opts.voice:
        config["audio"]["output"] = {"voice": opts.voice}
    if opts.instructions:
        config["instructions"] = opts.instructions
    history = [(r, t) for r, t in opts.history if t.strip()][-MAX_HISTORY_MESSAGES:]
    if history:
        config["input"] = [_initial_item(role, text) for role, text in history]
    return config
