"""The offline engine's record of the model's tool calls, kept valid for Chat Completions.

Chat Completions wants an assistant message with `tool_calls` to be followed at once by one
`tool` message per call. A call that waits for the owner's approval breaks that: its output is
withheld (the model must never read anything like a result before the tool ran), yet the
conversation goes on meanwhile: the session tells the model the action is waiting and has NOT
been done, the model says so, the caller may speak. Sending that as it happened gets the
request refused ("tool_calls must be followed by tool messages").

So a call is recorded where its outputs arrive: while any output of an assistant message's
calls is missing, the prompt shows that message without its `tool_calls` (its spoken words,
if any, stay where they were said; the status note names the action). When the last output
comes, the calls and their outputs go in together: in place if nothing was said since, else
at the end of the conversation, as a new assistant message followed by the outputs. Pure:
no I/O, no asyncio.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ToolCallLedger"]

Message = dict[str, Any]


class ToolCallLedger:
    """Owns the tool-call bookkeeping of `messages` (the engine's conversation, shared)."""

    def __init__(self, messages: list[Message]) -> None:
        self._messages = messages
        self._open: dict[str, Message] = {}  # call id -> the assistant message that made it
        self._outputs: dict[str, Message] = {}  # outputs of calls whose siblings still wait

    @property
    def pending(self) -> bool:
        """Some call's output has not arrived."""
        return bool(self._open)

    def opened(self, message: Message) -> None:
        """The model's `message` (role assistant, with `tool_calls`) joins the conversation."""
        self._messages.append(message)
        for call in message["tool_calls"]:
            self._open[call["id"]] = message

    def answer(self, call_id: str, output: str) -> bool:
        """Record a call's output; False (nothing changed) if no open call has that id."""
        message = self._open.get(call_id)
        if message is None or call_id in self._outputs:
            return False
        self._outputs[call_id] = {"role": "tool", "tool_call_id": call_id, "content": output}
        ids = [call["id"] for call in message["tool_calls"]]
        if all(i in self._outputs for i in ids):
            self._settle(message, ids)
        return True

    def render(self, recent: list[Message]) -> list[Message]:
        """`recent` as a request may carry it: messages whose calls still wait lose them."""
        waiting = {id(m) for m in self._open.values()}
        shown: list[Message] = []
        for message in recent:
            if id(message) not in waiting:
                shown.append(message)
            elif message.get("content"):
                shown.append({"role": "assistant", "content": message["content"]})
        return shown

    def _settle(self, message: Message, ids: list[str]) -> None:
        outputs = [self._outputs.pop(i) for i in ids]
        for i in ids:
            del self._open[i]
        if self._messages and self._messages[-1] is message:
            self._messages.extend(outputs)
            return
        calls = message.pop("tool_calls")
        if not message.get("content"):
            self._messages[:] = [m for m in self._messages if m is not message]
        self._messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        self._messages.extend(outputs)
