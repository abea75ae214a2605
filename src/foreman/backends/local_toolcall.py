"""Tool calls a small local model writes as plain JSON text, recognised without I/O.

Small instruction models served by llama.cpp often answer a tool request not in the
`tool_calls` field but as the text of the message: a bare `{"name": ..., "arguments": ...}`,
sometimes inside a ```json fence or Qwen's `<tool_call>…</tool_call>` tags, sometimes several
in a row or as a list. `parse_tool_calls` recognises exactly those shapes when they are the
whole message (prose around them means the model is talking, and the text is spoken);
`reply_kind` decides from the first characters of a streamed answer whether to start speaking
it or to hold it until it can be parsed. `fit_arguments` drops argument keys a tool's schema
does not declare, because small models often echo the schema itself as the arguments; what
is left is still checked by the gatekeeper like any other call. `AnswerSorter` puts these
together for a streamed answer: what to say as it comes, and the calls at its end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from foreman.chat.llm import Completion
from foreman.tools.request import ToolRequest

__all__ = ["AnswerSorter", "ParsedToolCall", "fit_arguments", "parse_tool_calls", "reply_kind"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_FENCE = re.compile(r"^```[A-Za-z]*\s*(.*?)\s*```$", re.DOTALL)
_TAG = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_OPENERS = ("{", "[", "```", "<tool_call>")


@dataclass(frozen=True, slots=True)
class ParsedToolCall:
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


class AnswerSorter:
    """One streamed answer: `feed` each text delta and say what it returns (the answer is
    held while it may still be a call written as text); `finish` with the stream's
    completion gives the tool calls and what is left to say."""

    def __init__(
        self, schemas: Mapping[str, Mapping[str, Any] | None], new_call_id: Callable[[], str]
    ) -> None:
        self._schemas = schemas
        self._new_call_id = new_call_id
        self._parts: list[str] = []
        self._kind: Literal["speech", "call"] | None = None

    def feed(self, delta: str) -> str:
        self._parts.append(delta)
        if self._kind == "speech":
            return delta
        if (kind := reply_kind("".join(self._parts))) == "speech":
            self._kind = kind
            return "".join(self._parts)  # what was held while it might have been a call
        self._kind = kind
        return ""

    def finish(self, completion: Completion | None) -> tuple[list[ToolRequest], str]:
        native: Sequence[Any] = completion.tool_calls if completion is not None else ()
        calls = [ToolRequest(c.call_id or self._new_call_id(), c.name, c.arguments) for c in native]
        text = "".join(self._parts)
        if calls or self._kind == "speech":
            return calls, ""
        calls = [
            ToolRequest(
                self._new_call_id(),
                p.name,
                json.dumps(
                    fit_arguments(p.arguments, self._schemas.get(p.name)), separators=(",", ":")
                ),
            )
            for p in parse_tool_calls(text)
        ]
        # Held text that was not a call after all is said.
        return calls, "" if calls or not text.strip() else text


def reply_kind(text_so_far: str) -> Literal["speech", "call"] | None:
    """`call`: the answer starts like a tool call, so hold it until it is complete; `speech`:
    it cannot be one, speak it; None: too early to tell (only whitespace, or a prefix of an
    opener such as `<tool` or a lone backtick)."""
    head = text_so_far.lstrip()
    if not head:
        return None
    for opener in _OPENERS:
        if head.startswith(opener):
            return "call"
        if opener.startswith(head):
            return None
    return "speech"


def parse_tool_calls(text: str) -> list[ParsedToolCall]:
    """The calls `text` consists of, in order; [] when it is not wholly tool calls."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    if "<tool_call>" in body:
        pieces = _TAG.findall(body)
        if not pieces or _TAG.sub("", body).strip():
            return []
        body = "\n".join(pieces)
    objects = _json_values(body)
    # Small models sometimes stop one or two closing braces short of a complete call.
    for missing in (1, 2):
        if objects is not None or not body.startswith("{"):
            break
        objects = _json_values(body + "}" * missing)
    if objects is None:
        return []
    calls: list[ParsedToolCall] = []
    for value in objects:
        for item in value if isinstance(value, list) else [value]:
            call = _as_call(item)
            if call is None:
                return []
            calls.append(call)
    return calls


def fit_arguments(arguments: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only the keys `schema` declares: none for an object schema without properties, all of
    them when it allows others (or is not a schema at all)."""
    if not isinstance(schema, Mapping) or schema.get("additionalProperties") is True:
        return dict(arguments)
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        return {k: v for k, v in arguments.items() if k in properties}
    return {} if schema.get("type") == "object" else dict(arguments)


def _json_values(body: str) -> list[Any] | None:
    """Every JSON value in `body`, which must hold nothing else (whitespace, commas and
    semicolons may separate them)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    i, end = 0, len(body)
    while True:
        while i < end and (body[i].isspace() or body[i] in ",;"):
            i += 1
        if i == end:
            return values or None
        if body[i] not in "{[":
            return None
        try:
            value, i = decoder.raw_decode(body, i)
        except ValueError:
            return None
        values.append(value)


def _as_call(item: Any) -> ParsedToolCall | None:
    if not isinstance(item, dict):
        return None
    if item.get("type") == "function" and isinstance(item.get("function"), dict):
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        return None
    if set(item) - {"name", "arguments", "parameters", "type", "id"}:
        return None
    raw = item.get("arguments", item.get("parameters", {}))
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None
    return ParsedToolCall(name, raw)
