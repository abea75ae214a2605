"""GPT-Live client events, built as the wire wants them (JSON text, no extra fields).

The session config is strict on the service (an unknown field is rejected), and every
append carries `delegation_id` (required, nullable: null under Responses delegation).
Shapes follow the `openai.types.live` client event union of the official Python SDK.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "AppendKind",
    "append",
    "function_call_output",
    "input_audio_append",
    "response_create",
    "response_item_create",
    "session_close",
    "session_start",
    "user_message",
]

AppendKind = Literal["instructions", "thinking", "commentary"]
MAX_APPEND_CHARS = 2000  # each append is at most 500 tokens: cut long notes, never fail


def _dump(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def session_start(session: Mapping[str, Any], event_id: str | None = None) -> str:
    event: dict[str, Any] = {"type": "session.start", "session": dict(session)}
    if event_id is not None:
        event["event_id"] = event_id
    return _dump(event)


def input_audio_append(audio_b64: str) -> str:
    # Per audio frame, 50 times a second: plain concatenation, base64 needs no escaping.
    return '{"type":"session.input_audio.append","audio":"' + audio_b64 + '"}'


def append(
    kind: AppendKind, content: str, *, delegation_id: str | None = None, event_id: str | None = None
) -> str:
    """`session.instructions.append` (act on it now), `session.thinking.append` (a silent
    fact) or `session.commentary.append` (say it, paraphrased)."""
    event: dict[str, Any] = {
        "type": f"session.{kind}.append",
        "content": content[:MAX_APPEND_CHARS],
        "delegation_id": delegation_id,
    }
    if event_id is not None:
        event["event_id"] = event_id
    return _dump(event)


def function_call_output(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def response_item_create(item: Mapping[str, Any]) -> str:
    return _dump({"type": "response.item.create", "item": dict(item)})


def response_create() -> str:
    return _dump({"type": "response.create"})


def session_close() -> str:
    return _dump({"type": "session.close"})
