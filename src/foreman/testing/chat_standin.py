"""A loopback stand-in for an OpenAI-compatible Chat Completions server (tests, local runs).

Serves what Foreman's chat engine uses (https://platform.openai.com/docs/api-reference/chat):

    POST /v1/chat/completions   streamed (Server-Sent Events, `data: [DONE]`) or whole;
                                text answers and tool calls
    GET  /v1/models             the one model it pretends to be

It checks requests the way the service does (a model, messages, every assistant tool call
answered by a tool message before anything else, tool messages only after a call, tool
schemas) and answers 400 in the service's error shape otherwise; with `api_key` it wants
`Authorization: Bearer <key>` (401 otherwise). Every request body is kept in `requests`.
Answers are scripted by rules, first match wins:

    rules = [
        Rule(When.user("text Ann"), Answer.call("send_sms", {"to": "+1555", "body": "hi"})),
        Rule(When.tool_result("send_sms"), Answer.say("Sent.")),
        Rule(When.system_prompt("Summarize"), Answer.say("The owner asked for the weather.")),
    ]
    async with ChatStandIn(rules) as llm:   # [chat] base_url = llm.base_url
        ...
        await llm.wait_for_requests(2)

Without a matching rule it answers "You said: <the last user text>" (after a tool result:
"Done."). Run it by hand with `foreman mock-chat` (rules from a JSON file: `--rules`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from foreman.testing.server import serve_app

DEFAULT_MODEL = "standin-chat-1"
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclass(frozen=True)
class When:
    """Which request a rule answers. Text matches are case-insensitive substrings."""

    last_role: str | None = None  # the role of the last message (None: any)
    contains: str = ""  # ... and its content contains this
    tool: str | None = None  # the last message is the result of a call of this tool
    instructions: str | None = None  # the first system message contains this

    @classmethod
    def user(cls, text: str = "") -> When:
        return cls(last_role="user", contains=text)

    @classmethod
    def tool_result(cls, name: str) -> When:
        return cls(last_role="tool", tool=name)

    @classmethod
    def note(cls, text: str = "") -> When:
        """The last message is a system note (e.g. "waiting for the owner's approval")."""
        return cls(last_role="system", contains=text)

    @classmethod
    def system_prompt(cls, text: str) -> When:
        return cls(instructions=text)

    @classmethod
    def any(cls) -> When:
        return cls()

    def matches(self, messages: Sequence[Mapping[str, Any]]) -> bool:
        if not messages:
            return False
        last = messages[-1]
        if self.last_role is not None and last.get("role") != self.last_role:
            return False
        if self.contains and self.contains.lower() not in _text(last).lower():
            return False
        if self.tool is not None and _tool_name(messages, last) != self.tool:
            return False
        if self.instructions is not None:
            first = next((m for m in messages if m.get("role") in ("system", "developer")), {})
            return self.instructions.lower() in _text(first).lower()
        return True


@dataclass(frozen=True)
class Answer:
    """What the model says: text, tool calls, or both; `delay_ms` between streamed pieces."""

    text: str = ""
    calls: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    delay_ms: int = 0

    @classmethod
    def say(cls, text: str, *, delay_ms: int = 0) -> Answer:
        return cls(text=text, delay_ms=delay_ms)

    @classmethod
    def call(cls, name: str, arguments: Mapping[str, Any] | None = None) -> Answer:
        return cls(calls=((name, dict(arguments or {})),))

    def and_call(self, name: str, arguments: Mapping[str, Any] | None = None) -> Answer:
        return Answer(self.text, (*self.calls, (name, dict(arguments or {}))), self.delay_ms)


@dataclass(frozen=True)
class Rule:
    when: When
    answer: Answer


@dataclass
class _Failure:
    status: int
    message: str
    times: int


@dataclass
class ChatStandIn:
    """`async with ChatStandIn(rules) as llm`: serving on `llm.base_url` (…/v1)."""

    rules: Sequence[Rule] = ()
    api_key: str | None = None
    model: str = DEFAULT_MODEL
    host: str = "127.0.0.1"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._changed = asyncio.Condition()
        self._served: contextlib.AbstractAsyncContextManager[str] | None = None

    # --- lifecycle --------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def __aenter__(self) -> ChatStandIn:
        self._served = serve_app(self.app(), host=self.host)
        self.base_url = f"{await self._served.__aenter__()}/v1"
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._served is not None:
            await self._served.__aexit__(*exc_info)
            self._served = None

    # --- scripting and inspection ------------------------------------------------------
    def fail_next(
        self, status: int = 500, message: str = "stand-in failure", times: int = 1
    ) -> None:
        """Answer the next `times` requests with an error of the service's shape."""
        self._failures.append(_Failure(status, message, times))

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
        """Wait until `count` requests have arrived; returns them all."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    def answer_for(self, messages: Sequence[Mapping[str, Any]]) -> Answer:
        for rule in self.rules:
            if rule.when.matches(messages):
                return rule.answer
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            return Answer.say("Done.")
        if last.get("role") == "user":
            return Answer.say(f"You said: {_text(last)}")
        return Answer.say("OK.")

    # --- the API ----------------------------------------------------------------------
    async def _models(self, request: Request) -> Response:
        return JSONResponse(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "me"}]}
        )

    async def _completions(self, request: Request) -> Response:
        wanted = None if self.api_key is None else f"Bearer {self.api_key}"
        if wanted is not None and request.headers.get("authorization") != wanted:
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        problem = _invalid(body)
        if problem is not None:
            return _error(400, problem)
        async with self._changed:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self._changed.notify_all()
        if self._failures:
            failure = self._failures[0]
            failure.times -= 1
            if failure.times <= 0:
                self._failures.pop(0)
            return _error(failure.status, failure.message)
        answer = self.answer_for(body["messages"])
        ids = [f"call_{next(self._ids):06x}" for _ in answer.calls]
        completion_id = f"chatcmpl-{next(self._ids):08x}"
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = self._chunks(completion_id, answer, ids, include_usage)
            return StreamingResponse(chunks, media_type="text/event-stream")
        return JSONResponse(self._whole(completion_id, answer, ids))

    def _whole(self, completion_id: str, answer: Answer, ids: list[str]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
        if answer.calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for call_id, (name, args) in zip(ids, answer.calls, strict=True)
            ]
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if answer.calls else "stop",
                    "logprobs": None,
                }
            ],
            "usage": _usage(answer),
        }

    async def _chunks(
        self, completion_id: str, answer: Answer, ids: list[str], include_usage: bool
    ) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            body = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }
            return f"data: {json.dumps(body)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        for piece in re.findall(r"\S+\s*|\s+", answer.text):
            if answer.delay_ms:
                await asyncio.sleep(answer.delay_ms / 1000)
            yield chunk({"content": piece})
        for index, (call_id, (name, args)) in enumerate(zip(ids, answer.calls, strict=True)):
            start = {"index": index, "id": call_id, "type": "function"}
            yield chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
            text = json.dumps(args)
            half = len(text) // 2
            for part in (text[:half], text[half:]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
        yield chunk({}, "tool_calls" if answer.calls else "stop")
        if include_usage:
            usage = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [],
                "usage": _usage(answer),
            }
            yield f"data: {json.dumps(usage)}\n\n".encode()
        yield b"data: [DONE]\n\n"


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def _tool_name(messages: Sequence[Mapping[str, Any]], last: Mapping[str, Any]) -> str | None:
    if last.get("role") != "tool":
        return None
    for message in reversed(messages):
        for call in message.get("tool_calls") or ():
            if call.get("id") == last.get("tool_call_id"):
                return str(call.get("function", {}).get("name"))
    return None


def _invalid(body: Any) -> str | None:
    """What the service would refuse in this request, or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Invalid 'messages': empty array. Expected an array with minimum length 1."
    open_calls: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return f"Invalid value for 'messages[{i}].role'."
        role = message["role"]
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            return f"Invalid type for 'messages[{i}].content'."
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in open_calls:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            open_calls.remove(call_id)
            continue
        if open_calls:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(open_calls)}"
            )
        if role == "assistant" and message.get("tool_calls"):
            open_calls = [str(c.get("id")) for c in message["tool_calls"]]
        elif content is None:
            return f"Invalid value for 'messages[{i}].content': expected a string."
    for i, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            return f"Missing required parameter: 'tools[{i}].function'."
        if not isinstance(function.get("name"), str) or not _NAME.match(function["name"]):
            return f"Invalid 'tools[{i}].function.name': string does not match pattern."
        if not isinstance(function.get("parameters", {}), dict):
            return f"Invalid type for 'tools[{i}].function.parameters'."
    return None


def _usage(answer: Answer) -> dict[str, int]:
    completion = len(answer.text) // 4 + 1 + 10 * len(answer.calls)
    return {"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10 + completion}


def _error(status: int, message: str, *, code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


# --- running it by hand --------------------------------------------------------------------


def rules_from_json(data: Any, source: str = "<rules>") -> list[Rule]:
    """Rules from JSON: `[{"when": {"user": "text"} | {"tool": "name"} | {"note": "text"} |
    {"system_prompt": "text"} | {}, "answer": {"text": "...", "calls": [{"name", "arguments"}]}}]`.
    Raises ValueError naming `source` and the rule."""
    if not isinstance(data, list):
        raise ValueError(f"{source}: expected a list of rules")
    rules = []
    for i, item in enumerate(data):
        where = f"{source}[{i}]"
        if not isinstance(item, dict) or set(item) - {"when", "answer"}:
            raise ValueError(f"{where}: a rule is an object with 'when' and 'answer'")
        when = item.get("when") or {}
        answer = item.get("answer") or {}
        if not isinstance(when, dict) or len(when) > 1:
            raise ValueError(f"{where}.when: one of user, tool, note, system_prompt (or {{}})")
        makers: dict[str, Callable[[str], When]] = {
            "user": When.user,
            "tool": When.tool_result,
            "note": When.note,
            "system_prompt": When.system_prompt,
        }
        key, value = next(iter(when.items()), ("", ""))
        if key and (key not in makers or not isinstance(value, str)):
            raise ValueError(f"{where}.when: unknown condition {key!r}")
        calls = answer.get("calls") or []
        if not isinstance(answer.get("text", ""), str) or not isinstance(calls, list):
            raise ValueError(f"{where}.answer: 'text' is a string, 'calls' a list")
        reply = Answer.say(answer.get("text", ""))
        for call in calls:
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                raise ValueError(f"{where}.answer.calls: each call needs a 'name'")
            reply = reply.and_call(call["name"], call.get("arguments") or {})
        rules.append(Rule(makers[key](value) if key else When.any(), reply))
    return rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="foreman mock-chat",
        description="Run a local stand-in for an OpenAI-compatible Chat Completions server.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200, help="0 picks a free port")
    parser.add_argument("--rules", type=Path, help="a JSON file of rules (see the module doc)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    rules: list[Rule] = []
    if args.rules is not None:
        try:
            rules = rules_from_json(json.loads(args.rules.read_text()), str(args.rules))
        except (OSError, ValueError) as exc:
            print(f"foreman mock-chat: {exc}", file=sys.stderr)
            return 2
    standin = ChatStandIn(rules, model=args.model, host=args.host)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"foreman mock-chat: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 2
    sock.listen(128)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"chat stand-in serving on http://{host}:{port}/v1 (model {args.model})", flush=True)
    config = uvicorn.Config(standin.app(), log_level="warning", access_log=False)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
    sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
