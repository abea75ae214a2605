"""Typed user turns in a voice session (`say`): one `TextTurn` (pure) at a time, fed the
backend's events through a bounded queue, ending when no tool output or answer is owed. A
turn whose reader went away, or fell too far behind, has its reply stopped so it cannot run
into the next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

from foreman.backends import interface as b
from foreman.exceptions import SessionClosed
from foreman.session.turns import TextTurn, ToolOutputSent

if TYPE_CHECKING:
    from foreman.session.conversation import ConversationSession

__all__ = ["MAX_TURN_BACKLOG", "TextTurns", "TurnInProgress"]

MAX_TURN_BACKLOG: Final = 4096  # events a text turn's reader has not taken yet

_Listener = Callable[[b.BackendEvent | ToolOutputSent], None]


class TurnInProgress(Exception):
    """A text turn is already running in this session (HTTP 409)."""


class TextTurns:
    """The text turns of one session. `listeners` get every backend event and tool output
    while a turn runs (the session's reader checks the set, which is never replaced)."""

    __slots__ = ("_max_backlog", "_session", "_turn", "listeners")

    def __init__(self, session: ConversationSession, max_backlog: int) -> None:
        self._session = session
        self._max_backlog = max_backlog
        self._turn: TextTurn | None = None
        self.listeners: set[_Listener] = set()

    def notify(self, event: b.BackendEvent | ToolOutputSent) -> None:
        for listener in list(self.listeners):
            listener(event)

    def say(self, text: str, *, audio: bool = False) -> AsyncIterator[dict[str, Any]]:
        """See `ConversationSession.say`."""
        session = self._session
        if not session.active:
            raise SessionClosed("the session has ended")
        if self._turn is not None:
            raise TurnInProgress("a text turn is already running in this session")
        until_idle = not session.backend.capabilities.turn_based
        turn = self._turn = TextTurn(audio=audio, until_idle=until_idle)
        return self._run(turn, text)

    async def _run(self, turn: TextTurn, text: str) -> AsyncIterator[dict[str, Any]]:
        session = self._session
        # Bounded: a reader that falls `_max_backlog` events behind (a client that stopped
        # reading a reply with audio) gets a last piece saying so, and the reply is stopped.
        queue: asyncio.Queue[b.BackendEvent | ToolOutputSent | None] = asyncio.Queue()
        limit = self._max_backlog

        def listen(event: b.BackendEvent | ToolOutputSent) -> None:
            if queue.qsize() < limit:
                queue.put_nowait(event)
                return
            # The first event too many, and the last this turn takes: the reply is stopped
            # now, not when (if ever) the reader gets this far.
            self.listeners.discard(listen)
            queue.put_nowait(None)
            tg = session._tg
            if tg is not None and (turn.running or session.turns.busy):
                tg.create_task(self._stop_reply(), name=f"turn-overflow:{session.session_id}")

        self.listeners.add(listen)
        try:
            if session._history is not None:
                session._history.typed(text)
            await session.backend.send_user_text(text)
            while not turn.done:
                event = await queue.get()
                if event is None:
                    turn.done = True  # already stopped: nothing for abandon to do
                    yield {
                        "done": True,
                        "transcript": "".join(turn.parts),
                        "status": "incomplete",
                        "error": f"the reader fell {limit} events behind; the reply was stopped",
                    }
                    return
                for piece in turn.feed(event):
                    yield piece
        finally:
            self.listeners.discard(listen)
            if self._turn is turn:
                await self.abandon()

    async def _stop_reply(self) -> None:
        with contextlib.suppress(Exception):  # the session may be ending under us
            await self._session.backend.report_heard(None, None)

    async def abandon(self) -> None:
        """See `ConversationSession.abandon_turn`."""
        session = self._session
        turn, self._turn = self._turn, None
        if turn is None or turn.done:
            return
        turn.done = True
        if (turn.running or session.turns.busy) and session.active:
            with contextlib.suppress(Exception):
                await session.backend.report_heard(None, None)
