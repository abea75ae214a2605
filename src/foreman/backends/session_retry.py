"""The retry loop both cloud backends run after a lost connection: new sessions with
backoff inside the outage's window until one is restored, a fatal answer, or the window is
spent. What a session is, how it is opened and restored, and which answers are fatal are
the backend's; the timing is the pure `RetryWindow`'s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from websockets.exceptions import ConnectionClosed

from foreman.exceptions import BackendError
from foreman.policy.backoff import RetryWindow

__all__ = ["retry_sessions"]

log = logging.getLogger("foreman.backends")

S = TypeVar("S", bound=tuple[Any, ...])  # a new session: its connection first


async def retry_sessions(
    window: RetryWindow,
    lost: str,
    *,
    closing: Callable[[], bool],
    open_session: Callable[[], Awaitable[S]],
    restore: Callable[[S], Awaitable[None]],
    worthwhile: Callable[[str | None], bool],
) -> tuple[bool, str | None]:
    """(True, None) once a session is open and restored; (False, why) when retrying is
    over (why is None when the backend is closing). A session opened as the backend closes
    is closed here (its connection, the session's first item)."""
    last = lost
    while not closing():
        delay = window.next_delay(time.monotonic())
        if delay is None:
            return False, f"{lost}; no new model session within {window.window_s:g} s ({last})"
        await asyncio.sleep(delay)
        try:
            # One attempt never runs past the window (plus a moment to finish the handshake).
            async with asyncio.timeout(window.remaining(time.monotonic()) + 0.5):
                session = await open_session()
        except TimeoutError:
            last = "no new session before the window ended"
            continue
        except BackendError as exc:
            if not worthwhile(exc.code):
                return False, f"{lost}; reconnecting failed: {exc}"
            last = str(exc)
            log.info("reconnect attempt %d failed: %s", window.attempts, exc)
            continue
        if closing():
            with contextlib.suppress(Exception):
                await session[0].close()
            return False, None
        try:
            await restore(session)
        except ConnectionClosed:
            last = "the new connection closed while being restored"
            continue
        return True, None
    return False, None
