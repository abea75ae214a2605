"""Shutdown for phone calls: no call is cut off mid-sentence without a word.

`drain_calls` runs first at shutdown (`foreman.api.server`), while the server still listens:
the registry is closing, so a new call's webhook is answered with a short `<Say>` and
`<Hangup/>` (Twilio never opens a stream for it) and a desk session cannot start. Live calls
get `[limits] shutdown_grace_s` to end by themselves (their records keep their own reason);
each call still live then hears the packaged goodbye clip in place of the model and is hung
up through Twilio REST, recorded as ended by the shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from foreman.endpoints.twilio import TwilioEndpoint, clip_limit_s
from foreman.policy.context import Channel
from foreman.session.conversation import ConversationSession
from foreman.session.registry import SessionRegistry

log = logging.getLogger("foreman.call")


async def drain_calls(
    registry: SessionRegistry, goodbye: bytes, *, grace_s: float, reason: str
) -> int:
    """Refuse new sessions, give live calls `grace_s` to end, then say `goodbye` (8 kHz
    µ-law) to each one left and hang it up with `reason`. Returns how many were hung up."""
    registry.closing = True
    calls = registry.of_channel(Channel.PHONE)
    if not calls:
        return 0
    log.info("shutting down: no new calls; %d live call(s) may go on for %g s", len(calls), grace_s)
    await _first_of([s.wait_closed() for s in calls], timeout=grace_s, every=True)
    left = [s for s in calls if s.active]
    await asyncio.gather(*(_goodbye(s, goodbye, reason) for s in left))
    return len(left)


async def _goodbye(session: ConversationSession, goodbye: bytes, reason: str) -> None:
    endpoint = session.endpoint
    if isinstance(endpoint, TwilioEndpoint):
        log.info("%s: saying goodbye (%s)", endpoint.call_sid, reason)
        await _first_of(
            [endpoint.play_clip(goodbye), session.wait_closed()], timeout=clip_limit_s(goodbye)
        )
    await session.hang_up_now(reason)


async def _first_of(
    work: list[Awaitable[Any]],
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline for several awaitables at once
    every: bool = False,
) -> None:
    """Wait for the first of `work` to end (`every`: all of them), `timeout` at most; then
    cancel the rest. Their failures are the session's business: a clip that cannot be sent
    because the caller hung up ends nothing more here."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        when = asyncio.ALL_COMPLETED if every else asyncio.FIRST_COMPLETED
        await asyncio.wait(tasks, timeout=timeout, return_when=when)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
