"""A tool call as the model asked for it, before anything is decided about it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """The model wants a tool run. Answer with exactly one output for `call_id`."""

    call_id: str
    name: str
    arguments: str  # raw JSON text from the model; may be invalid
