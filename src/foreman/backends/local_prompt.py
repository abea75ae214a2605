"""What the offline engine's model is told before the conversation: the system prompt, the
prefix every call on the in-process model shares so llama.cpp's prompt cache serves it, and
the clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from foreman.backends.interface import BackendOptions
from foreman.backends.local_calls import ToolCallLedger
from foreman.backends.local_runtime import LocalRuntime
from foreman.chat.llm import ChatCompletionsClient, LLMError, to_chat_tool
from foreman.chat.local_server import LocalChatClient

__all__ = [
    "SPOKEN_STYLE",
    "ModelMessages",
    "clock_note",
    "prompt_messages",
    "shared_prefix",
    "system_prompt",
    "warm_shared_prefix",
]

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


def clock_note(now: datetime) -> str:
    """The date and time as the model is told them, a system message in the conversation
    before a turn whenever the minute has changed. A small local model seldom calls
    `get_time` (the packaged one made a time up instead), so it is given the clock; the tool
    still answers for other time zones. The notes stay in the conversation rather than
    being moved to its end each turn: moving one would make llama.cpp read the turns after
    its old place again, about 0.2 s on two cores."""
    zone = now.tzname() or "UTC"
    twelve_hour = now.strftime("%I:%M %p").lstrip("0")
    return f"It is now {twelve_hour} ({now:%H:%M} {zone}) on {now:%A}, {now.day} {now:%B %Y}."


def shared_prefix(
    tools: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first system message and the tools every session on the in-process model with
    these `tools` sends first (`LocalEngineBackend._prompt`)."""
    return [{"role": "system", "content": SPOKEN_STYLE}], [to_chat_tool(t) for t in tools]


def prompt_messages(
    options: BackendOptions,
    recent: Sequence[dict[str, Any]],
    *,
    shared_first: bool,
) -> list[dict[str, Any]]:
    """What the engine's model is sent: the system prompt, then the recent conversation
    (with the clock notes the engine put in it). The system prompt and the tools come first
    and never change within a session, so llama.cpp's prompt cache reuses them from one
    turn to the next.

    With `shared_first` (the in-process model: a ChatML template, which renders the tools
    right after the first system message) the first message is the spoken style alone and
    the session's own instructions (a call's caller and number) follow as a second system
    message: the style and the tool list, most of the prompt, are then the same for every
    call with the same tools, and a later call finds them in the cache too."""
    if shared_first:
        head, _ = shared_prefix(())
        if own := system_prompt(options, style=False):
            head.append({"role": "system", "content": own})
    else:
        head = [{"role": "system", "content": system_prompt(options)}]
    return [*head, *recent]


MESSAGES_KEPT = 40  # conversation messages sent to the model (the system prompt always)


def _now() -> datetime:
    return datetime.now().astimezone()


class ModelMessages:
    """The conversation as the engine's model is sent it: the messages (with the clock
    notes told into them), the tool calls whose outputs are withheld (`ToolCallLedger`),
    and the prompt for a turn."""

    def __init__(self, options: BackendOptions, *, clock: bool) -> None:
        self.options = options
        self.clock = clock
        self.shared_first = False  # the in-process model: see prompt_messages
        self.messages: list[dict[str, Any]] = []
        self.calls = ToolCallLedger(self.messages)  # keeps withheld outputs valid to send
        self._clock_told: str | None = None  # the last clock note in the conversation

    def prompt(self) -> list[dict[str, Any]]:
        """What the model is sent (`prompt_messages`)."""
        recent = self.calls.render(self.messages[-MESSAGES_KEPT:])
        return prompt_messages(self.options, recent, shared_first=self.shared_first)

    def user_turn(self, text: str) -> None:
        """The user's turn, after the clock note if one is due."""
        self.tell_the_time()
        self.messages.append({"role": "user", "content": text})

    def tell_the_time(self) -> None:
        """Before a turn: the clock note goes into the conversation when the minute has
        changed, and stays there, so it stays in the prompt cache too."""
        note = clock_note(_now()) if self.clock else None
        if note is not None and note != self._clock_told:
            self._clock_told = note
            self.messages.append({"role": "system", "content": note})


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
