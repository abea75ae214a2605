"""A session's tool calls: each one a task of the session's task group, bounded in number
and in time, and answered exactly once whatever happens to it (an error, a hang, a bug, a
handler that forgets): the model is never left waiting on a call.

An end asked for from inside a tool call (`end_call`) waits for that call's output, so the
model has its answer before the goodbye.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol

from foreman.events import ToolRequested
from foreman.session.transcript_writer import HistoryHook
from foreman.session.turns import ToolOutputSent
from foreman.tools.request import ToolRequest

if TYPE_CHECKING:
    from foreman.session.conversation import ConversationSession

__all__ = ["MAX_TOOL_CALLS", "ToolHandler", "ToolJobs"]

log = logging.getLogger("foreman.session")

MAX_TOOL_CALLS: Final = 8  # tool calls running at once ([limits] call_max_tool_calls)
# Set in the context of each tool-call task (tasks copy the context they are created in).
_in_tool_job: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tool_job", default=False)
_ERROR_OUTPUT: Final = '{{"ok": false, "error": {}}}'


class ToolHandler(Protocol):
    """The tool layer as a session uses it (foreman.tools.dispatcher.ToolDispatcher)."""

    async def handle(self, request: ToolRequest, session: Any) -> None:
        """Decide, maybe wait for an approval, run, and send the call's one output."""
        ...

    def deadline_s(self, request: ToolRequest) -> float:
        """The longest `handle` may take for `request` before the session answers for it."""
        ...

    def on_user_utterance(self, session: Any, text: str) -> None: ...

    def cancel_session(self, session_id: str) -> None: ...


class ToolJobs:
    """The tool calls of one session (`ConversationSession` is their `ToolSession`)."""

    __slots__ = ("_answered", "_end_requested", "_history", "_max", "_running", "_session", "tools")

    def __init__(
        self,
        session: ConversationSession,
        tools: ToolHandler | None,
        history: HistoryHook | None,
        max_running: int,
    ) -> None:
        self._session = session
        self.tools = tools
        self._history = history
        self._max = max_running
        self._running = 0  # tool calls running now
        self._answered: set[str] = set()  # tool calls that got their output
        self._end_requested: str | None = None

    def start(self, req: ToolRequest) -> None:
        """The model asked for a tool: run it as a task of the session."""
        session = self._session
        session.stats.tool_calls += 1
        session._publish(ToolRequested(session.session_id, req.call_id, req.name))
        if self._history is not None:
            self._history.tool_call(req.call_id, req.name, req.arguments)
        tg = session._tg
        assert tg is not None
        if self._running >= self._max:
            # Bounded like every queue of a call: a model asking for calls faster than they
            # finish gets an answer at once instead of an ever longer line of tasks.
            message = f"too many tool calls at once (at most {self._max}); try again"
            tg.create_task(self._answer_error(req, message), name=f"tool-refused:{req.name}")
            return
        self._running += 1
        tg.create_task(self._job(req), name=f"tool:{req.name}")

    async def _job(self, req: ToolRequest) -> None:
        """Run one tool call to its output. Whatever goes wrong, the model is answered."""
        _in_tool_job.set(True)  # an end requested by this call waits for its output
        try:
            await self._run(req)
        finally:
            self._running -= 1
            if self._end_requested is not None:
                self._session._end.begin(self._end_requested)

    async def _run(self, req: ToolRequest) -> None:
        session = self._session
        tools = self.tools
        if tools is None:
            if req.name == "end_call":  # without a tool layer, a call can still be ended
                await self.send_result(req.call_id, '{"ok": true}', respond=False)
                session.request_end("end_call")
            else:
                await self._answer_error(req, f"tool {req.name!r} is not available here")
            return
        try:
            async with asyncio.timeout(tools.deadline_s(req)):
                await tools.handle(req, session)
        except TimeoutError:
            log.warning("%s: tool %s did not finish", session.session_id, req.name)
            await self._answer_error(req, f"{req.name} did not finish in time; it may not be done")
        except Exception as exc:
            log.exception("%s: tool %s failed", session.session_id, req.name)
            await self._answer_error(
                req, f"{req.name} failed: internal error ({type(exc).__name__})"
            )
        else:
            if req.call_id not in self._answered:
                await self._answer_error(req, f"{req.name} returned no result")

    async def _answer_error(self, req: ToolRequest, message: str) -> None:
        if req.call_id not in self._answered:
            await self.send_result(req.call_id, _ERROR_OUTPUT.format(json.dumps(message)))

    async def send_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """The call's one output; with `respond`, the model answers from it."""
        session = self._session
        if call_id in self._answered:
            log.warning("%s: second output for %s dropped", session.session_id, call_id)
            return
        self._answered.add(call_id)
        if self._history is not None:
            self._history.tool_result(call_id, output)
        await session.backend.submit_tool_result(call_id, output, continue_conversation=respond)
        session._text.notify(ToolOutputSent(call_id, respond))

    def defer_end(self, reason: str) -> bool:
        """True when asked from inside a tool call: the end then starts once that call's
        output has been sent."""
        if not _in_tool_job.get():
            return False
        self._end_requested = self._end_requested or reason
        return True

    def on_user_utterance(self, text: str) -> None:
        """A whole user utterance, for spoken confirmation of a pending approval."""
        if self.tools is not None:
            self.tools.on_user_utterance(self._session, text)

    def cancel(self) -> None:
        """The session ends: the tool layer drops what it holds for it (pending approvals)."""
        if self.tools is None:
            return
        try:
            self.tools.cancel_session(self._session.session_id)
        except Exception:
            log.exception("%s: cancelling tool calls failed", self._session.session_id)
