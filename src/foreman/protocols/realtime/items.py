"""Builders for GA conversation items
(https://platform.openai.com/docs/api-reference/realtime-client-events/conversation/item/create).

Use them with `ConversationItemCreate(item)`. GA content types: system and user messages
take `input_text`; assistant messages take `output_text` (assistant audio cannot be created).
A function result goes back as a `function_call_output` whose `output` is a string.
"""

from __future__ import annotations

from typing import Any


def _message(role: str, content_type: str, text: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise TypeError(f"{role} message text must be a string, got {type(text).__name__}")
    return {"type": "message", "role": role, "content": [{"type": content_type, "text": text}]}


def user_text_item(text: str) -> dict[str, Any]:
    """A user message with one `input_text` part."""
    return _message("user", "input_text", text)


def system_text_item(text: str) -> dict[str, Any]:
    """A system message with one `input_text` part (context the caller should not hear)."""
    return _message("system", "input_text", text)


def assistant_text_item(text: str) -> dict[str, Any]:
    """An assistant message with one `output_text` part (e.g. replayed history)."""
    return _message("assistant", "output_text", text)


def user_audio_item(b64_audio: str) -> dict[str, Any]:
    """A user message with one `input_audio` part (base64 in the session's input format)."""
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "audio": b64_audio}],
    }


def function_call_output_item(call_id: str, output: str) -> dict[str, Any]:
    """The result of call `call_id`. JSON-encode structured results first: `output` is text."""
    if not isinstance(output, str):
        raise TypeError(
            f"function_call_output.output must be a string, got {type(output).__name__}"
        )
    if not call_id:
        raise ValueError("function_call_output needs the call_id of the call it answers")
    return {"type": "function_call_output", "call_id": call_id, "output": output}
