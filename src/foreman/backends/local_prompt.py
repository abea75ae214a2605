"""What the offline engine's model is told before the conversation: the system prompt, and
the prefix every call on the in-process model shares so llama.cpp's prompt cache serves it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from foreman.backends.interface import BackendOptions
from foreman.backends.local_runtime import LocalRuntime
from foreman.chat.llm import ChatCompletionsClient, LLMError, to_chat_tool
from foreman.chat.local_server import LocalChatClient

__all__ = ["SPOKEN_STYLE", "shared_prefix", "system_prompt", "warm_shared_prefix"]

log = logging.getLogger(__name__)

SPOKEN_STYLE = (
    "Your answers are spoken aloud by a speech synthesizer: reply in one to three short "
    "plain sentences, with no lists, markdown or emoji."
)


def system_prompt(options: BackendOptions, *, style: bool = True) -> str:
    """The session's instructions, the spoken style and the system lines of its history."""
    parts = [options.instructions, SPOKEN_STYLE if style else ""]
    parts += [text for role, text in options.history if role == "system"]
    return "\n\n".join(p for p in parts if p)


def shared_prefix(
    tools: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first system message and the tools every session on the in-process model with
    these `tools` sends first (`LocalEngineBackend._prompt`)."""
    return [{"role": "system", "content": SPOKEN_STYLE}], [to_chat_tool(t) for t in tools]


def warm_shared_prefix(runtime: LocalRuntime, tools: list[Mapping[str, Any]]) -> float | None:
    """Blocking (a worker thread at `foreman serve`'s start, after the models loaded): have
    the in-process model read the shared prefix for `tools` once, a one-token answer, so the
    first call finds it in llama.cpp's prompt cache. Seconds taken, or None if not done."""
    llm = runtime.loaded_llm
    if not isinstance(llm, LocalChatClient) or not llm.server.running:
        return None
    messages, chat_tools = shared_prefix(tools)
    started = time.monotonic()

    async def once() -> None:
        # A client of this thread's own loop: the shared one belongs to the server's loop.
        client = ChatCompletionsClient(
            base_url=llm.server.base_url, model=llm.model, api_key=llm.server.api_key
        )
        try:
            await client.complete(messages, tools=chat_tools, max_tokens=1)
        finally:
            await client.aclose()

    try:
        asyncio.run(once())
    except LLMError as exc:
        log.info("offline engine: the prompt warm-up failed: %s", exc)
        return None
    return time.monotonic() - started
