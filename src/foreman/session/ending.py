"""How a session ends, on purpose: now (an API stop, shutdown), now with a hang-up, politely
after the goodbye (`end_call`), or because the model is gone for good.

Each raises `ConversationEnded(reason)` in a task of the session's task group, which ends
the group; the session's reason is the one it was ended for, even when the user's side
closes first in reply to the hang-up. A polite end waits until the backend is idle (the
goodbye was said) and the endpoint has played everything that is not filler (the goodbye
was heard), `END_PLAYOUT_LIMIT_S` at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

from foreman.exceptions import ConversationEnded

if TYPE_CHECKING:
    from foreman.session.conversation import ConversationSession

__all__ = ["END_PLAYOUT_LIMIT_S", "SessionEnd"]

log = logging.getLogger("foreman.session")

END_PLAYOUT_LIMIT_S: Final = 30.0  # a goodbye never keeps a line open longer than this


class SessionEnd:
    """The end of one session; `started` once an end is under way (nothing starts another)."""

    __slots__ = ("_limit_s", "_progress", "_session", "started")

    def __init__(self, session: ConversationSession, playout_limit_s: float) -> None:
        self._session = session
        self._limit_s = playout_limit_s
        self.started = False
        # Set when the backend went idle or the endpoint played everything: what an ending
        # call waits on (made when first needed: most sessions never wait on it).
        self._progress: asyncio.Event | None = None

    def now(self, reason: str) -> None:
        """End now, without a goodbye or a hang-up."""
        session = self._session
        if session._tg is None:
            return
        if not self.started:
            session.reason = reason
        self.started = True
        self._add_task(_raise(ConversationEnded(reason)))

    def hang_up_now(self, reason: str) -> None:
        """End now and hang up the user's side."""
        session = self._session
        if session._tg is None:
            return
        if not self.started:
            session.reason = reason
        self.started = True

        async def _end() -> None:
            await session.endpoint.hang_up(reason)
            raise ConversationEnded(reason)

        self._add_task(_end())

    def begin(self, reason: str) -> None:
        """End politely: let the goodbye be said and heard, then hang up."""
        if self.started or self._session._tg is None:
            return
        self.started = True
        self._add_task(self._after_goodbye(reason), name="end_call")

    def progressed(self) -> None:
        """The backend went idle, or the endpoint played everything, or playback was cut:
        an ending session looks again whether the goodbye is over."""
        if self._progress is not None:
            self._progress.set()

    async def backend_closed(self, error: str | None) -> None:
        session = self._session
        reason = f"backend closed: {error}" if error else "backend closed"
        if error:
            session.error = error
            if not self.started:
                # The model is gone for good (its backend tried to recover): tell the user
                # (a phone caller hears a clip), then end their side on purpose, with the
                # reason on record (a phone call: through REST).
                self.started = True
                session.reason = session.reason or reason
                await session.endpoint.apologize()
                await session.endpoint.hang_up(reason)
        raise ConversationEnded(reason)

    def _add_task(self, work: Coroutine[Any, Any, None], name: str | None = None) -> None:
        """Run `work` in the session's task group, unless the group is already ending
        (something else ended the session first): then there is nothing left to do."""
        try:
            tg = self._session._tg
            assert tg is not None
            tg.create_task(work, name=name)
        except RuntimeError:
            work.close()

    async def _after_goodbye(self, reason: str) -> None:
        session = self._session
        progress = self._progress = asyncio.Event()
        try:
            async with asyncio.timeout(self._limit_s):
                # The goodbye is still being said, or still being heard.
                while session.turns.busy or session.endpoint.playing:
                    progress.clear()
                    await progress.wait()
        except TimeoutError:
            log.warning("%s: the goodbye did not finish playing", session.session_id)
        # Ours, even when the user's side closes first in reply to the hang-up.
        session.reason = session.reason or reason
        await session.endpoint.hang_up(reason)
        raise ConversationEnded(reason)


async def _raise(exc: BaseException) -> None:
    raise exc
