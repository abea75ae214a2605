"""What a dispatcher may do to the session it serves (`session.ConversationSession`)."""

from __future__ import annotations

from typing import Protocol

from foreman.policy.context import CallContext


class ToolSession(Protocol):
    ctx: CallContext

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """Send the `function_call_output` for `call_id` (exactly once per call), then, if
        `respond`, ask for the follow-up response (after the current one is done)."""
        ...

    async def notify_model(self, text: str) -> None:
        """Add a system note the model sees ("still running", "waiting for approval").

        The session should also let the model speak (a response) when none is active, so
        the caller hears "I'm waiting for approval" instead of dead air."""
        ...

    def request_end(self, reason: str) -> None:
        """end_call: finish the goodbye audio, hang up, return to text mode. Returns at once."""
        ...
