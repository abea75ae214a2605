"""An LLM client over the OpenAI Chat Completions wire format, through the `openai` package.

Works against OpenAI and any server that speaks the format (Ollama, llama.cpp, vLLM):
https://platform.openai.com/docs/api-reference/chat/create. Usable on its own, not only by
the chat engine: give it messages (plain Chat Completions dicts) and tool schemas, read
`TextDelta`s as they stream and one `Completion` at the end. Every failure is an
`LLMError` with a one-line message that never carries the key.

The key goes only where the config allows (`chat_api_key`: a listed host, over https://
unless it is this machine). Without a key no `Authorization` header is sent at all: a
local server needs none, and the `openai` package would otherwise fill one in from the
environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import openai
from openai import AsyncOpenAI, Omit

from foreman.config import ChatConfig
from foreman.exceptions import ForemanError
from foreman.io.realtime_ws import endpoint_host, key_allowed, needs_api_key

log = logging.getLogger(__name__)

Message = Mapping[str, Any]
# The `openai` package also reads OPENAI_ORG_ID and OPENAI_PROJECT_ID from the environment
# and sends them to whatever base URL it is given: never to a server we did not choose.
_NO_AMBIENT_HEADERS: Final[dict[str, Any]] = {
    "OpenAI-Organization": Omit(),
    "OpenAI-Project": Omit(),
}
_NO_KEY: Final = "no-key"  # the package refuses to start without one; never sent (see above)
_HINTS: Final = {
    401: "authentication failed: check the chat key ([chat] api_key_env)",
    403: "forbidden: the key has no access to this model",
    404: "not found: check [chat] base_url and [chat] model",
    429: "rate limited or out of quota",
}


class LLMError(ForemanError):
    """The model could not answer; the message is one line, fit to show a person."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the model asked for; `arguments` is its raw JSON text (it may be invalid)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """The whole answer: its text, the tools it asked for, and why it stopped."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    usage: Mapping[str, int] = field(default_factory=dict)

    def assistant_message(self) -> dict[str, Any]:
        """The answer as the assistant message the next request must carry."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.call_id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return message


LLMEvent = TextDelta | Completion


def chat_api_key(config: ChatConfig) -> str:
    """The key to send to `[chat] base_url`, or "" (no key set, or not for that host)."""
    key = config.api_key.get_secret_value()
    return key if key and key_allowed(config.base_url, config.api_key_hosts) else ""


def chat_refusal(config: ChatConfig) -> str | None:
    """Why chat cannot work as configured (one line), or None when it may be tried."""
    if not config.enabled:
        return "chat is turned off ([chat] enabled = false)"
    if needs_api_key(config.base_url) and not chat_api_key(config):
        if config.api_key.get_secret_value():
            return (
                f"the chat key is sent only over https:// to the hosts in [chat] api_key_hosts "
                f"({', '.join(config.api_key_hosts) or 'none'}); "
                f"{endpoint_host(config.base_url)} would get none"
            )
        return (
            f"no chat key: set {config.api_key_env} where `foreman serve` runs, or point "
            "[chat] base_url at a local server (e.g. http://127.0.0.1:11434/v1)"
        )
    return None


def to_chat_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool schema in the Realtime shape (`{type, name, description, parameters}`) in the
    Chat Completions shape (`{type: function, function: {...}}`)."""
    return {
        "type": "function",
        "function": {
            "name": tool["name"],
            "description": tool.get("description", ""),
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
        },
    }


class ChatCompletionsClient:
    """One model at one base URL. `stream()` or `complete()`, then `aclose()`."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 60.0,
        max_retries: int = 1,
        http_client: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.host = endpoint_host(base_url)
        self.sends_key = bool(api_key)
        self._auth: dict[str, Any] = {} if api_key else {"Authorization": Omit()}
        self._client = AsyncOpenAI(
            api_key=api_key or _NO_KEY,
            base_url=self.base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            default_headers=_NO_AMBIENT_HEADERS,
            http_client=http_client,
        )

    @classmethod
    def from_config(cls, config: ChatConfig) -> ChatCompletionsClient:
        return cls(
            base_url=config.base_url,
            model=config.model,
            api_key=chat_api_key(config),
            timeout_s=config.timeout_s,
        )

    async def aclose(self) -> None:
        await self._client.close()

    def status(self) -> dict[str, Any]:
        """What status may show (never the key)."""
        return {"model": self.model, "host": self.host, "sends_key": self.sends_key}

    async def stream(
        self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] = ()
    ) -> AsyncIterator[LLMEvent]:
        """Text pieces as they come, then exactly one `Completion`. Raises LLMError."""
        kwargs = self._request(messages, tools)
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish = "stop"
        usage: dict[str, int] = {}
        try:
            chunks = await self._client.chat.completions.create(**kwargs, stream=True)
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    for position, piece in enumerate(delta.tool_calls or ()):
                        _merge_call(calls, position, piece)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        yield Completion("".join(text), _calls(calls), finish, usage)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] = (),
        max_tokens: int | None = None,
    ) -> Completion:
        """The whole answer at once (no streaming), at most `max_tokens` long if given.
        Raises LLMError."""
        kwargs = self._request(messages, tools)
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        try:
            response = await self._client.chat.completions.create(**kwargs)
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        if not response.choices:
            raise LLMError(f"{self.host}: the model sent no answer")
        choice = response.choices[0]
        message = choice.message
        calls = tuple(
            ToolCall(c.id, c.function.name, c.function.arguments or "")
            for c in (message.tool_calls or ())
            if getattr(c, "function", None) is not None
        )
        usage = _usage(response.usage) if response.usage is not None else {}
        return Completion(message.content or "", calls, choice.finish_reason or "stop", usage)

    def _request(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "extra_headers": self._auth,
        }
        if tools:
            kwargs["tools"] = [dict(t) for t in tools]
        return kwargs

    def _error(self, exc: openai.OpenAIError) -> LLMError:
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            # Never the server's own words for auth failures: they can quote part of the key.
            hint = _HINTS.get(status) or _server_message(exc)
            return LLMError(f"{self.host}: HTTP {status}: {hint}", status=status)
        if isinstance(exc, openai.APITimeoutError):
            return LLMError(f"{self.host}: the model did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            return LLMError(f"{self.host}: cannot connect ({_cause(exc)})")
        return LLMError(f"{self.host}: {type(exc).__name__}: {_one_line(str(exc))}")


def _merge_call(calls: dict[int, dict[str, Any]], position: int, piece: Any) -> None:
    """Fold one streamed tool-call fragment in: the first carries id and name, the rest
    pieces of the arguments (by `index`; a server that omits it sends whole calls)."""
    index = piece.index if isinstance(getattr(piece, "index", None), int) else position
    call = calls.setdefault(index, {"id": "", "name": "", "arguments": []})
    if piece.id:
        call["id"] = piece.id
    function = piece.function
    if function is not None:
        if function.name:
            call["name"] = function.name
        if function.arguments:
            call["arguments"].append(function.arguments)


def _calls(calls: Mapping[int, Mapping[str, Any]]) -> tuple[ToolCall, ...]:
    """The assembled calls; an id a server left out or repeated gets one of its own (each
    call must be answered under a distinct id)."""
    out: list[ToolCall] = []
    seen: set[str] = set()
    for i, c in sorted(calls.items()):
        if not c["name"]:
            continue
        call_id = c["id"] if c["id"] and c["id"] not in seen else f"call_{i}_{len(seen)}"
        seen.add(call_id)
        out.append(ToolCall(call_id, c["name"], "".join(c["arguments"])))
    return tuple(out)


def _usage(usage: Any) -> dict[str, int]:
    return {
        k: v
        for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        if isinstance(v := getattr(usage, k, None), int)
    }


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    message: Any = None
    if isinstance(body, Mapping):
        message = body.get("message")
        error = body.get("error")
        if isinstance(error, Mapping):
            message = error.get("message", message)
    if not isinstance(message, str):
        message = exc.message
    return _one_line(message) or "the server refused the request"


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return _one_line(str(cause)) if cause is not None and str(cause) else "connection failed"


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
