"""Run tool calls through a `ToolDispatcher` the way a conversation session does, for tests
of tools and executors without a model: each call is a task owned per session, cancelled
when that session "hangs up"."""

from __future__ import annotations

import asyncio
from typing import Any

from foreman.testing.timeouts import unit
from foreman.tools.services import ToolServices


class ToolJobs:
    """Runs tool calls the way a session does: each `handle` as a task the session owns,
    cancelled when the session hangs up. `handle` returns once the call is decided (the
    prompt, if any, is open; a rejection is answered)."""

    def __init__(self, services: ToolServices) -> None:
        self.services = services
        self.tasks: dict[str, list[asyncio.Task[None]]] = {}

    async def handle(self, request: Any, session: Any) -> asyncio.Task[None]:
        sub = self.services.bus.subscribe(kinds=("tool.call",))
        task = asyncio.create_task(self.services.dispatcher.handle(request, session))
        self.tasks.setdefault(session.ctx.session_id, []).append(task)
        decided = asyncio.ensure_future(self._decided(sub, request.call_id))
        try:
            await asyncio.wait({task, decided}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            decided.cancel()
            sub.close()
        if task.done():
            task.result()  # a crash in handle is a test failure, not a silent pass
        return task

    @staticmethod
    async def _decided(sub: Any, call_id: str) -> None:
        while (await sub.get()).data.get("call_id") != call_id:
            pass

    def hang_up(self, session_id: str) -> None:
        """The session ended: its tool tasks are cancelled, then its prompts."""
        for task in self.tasks.get(session_id, []):
            task.cancel()
        self.services.dispatcher.cancel_session(session_id)

    async def drain(self, session_id: str | None = None, wait_s: float = 5.0) -> None:
        tasks = [t for sid, ts in self.tasks.items() if session_id in (None, sid) for t in ts]
        if tasks:
            await asyncio.wait(tasks, timeout=unit(wait_s))

    def running(self, session_id: str) -> int:
        return sum(not t.done() for t in self.tasks.get(session_id, []))
