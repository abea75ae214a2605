"""The Realtime backend's supervisor: one task per session, in the session's task group,
that wakes a few times a second (never per audio frame) to

* feed the `Watchdog` what the backend already counts, and act on its verdict: nudge
  (cancel and ask again), reconnect (a new session with the conversation replayed), or give
  up (the session ends with the reason);
* roll over before the service's session limit: after `rollover_after_s` a standby session
  is opened and configured while the old one keeps serving; at the first pause (assistant
  idle, user silent) it is swapped in with the conversation replayed, so nothing is heard.
  If no pause comes before the limit, the service's `session_expired` close is handled as a
  reconnect.

Tools that never return are bounded by the tool layer's deadline (the session answers for
them), so they are not watched here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Final

from foreman.exceptions import BackendError

if TYPE_CHECKING:
    from foreman.backends.openai_realtime import OpenAIRealtimeBackend

log = logging.getLogger(__name__)

MAX_TICK_S: Final = 0.25  # also how long a pause may go unnoticed by a rollover
ROLLOVER_RETRY_S: Final = 30.0  # after a standby session could not be opened


async def supervise(backend: OpenAIRealtimeBackend, tg: asyncio.TaskGroup) -> None:
    rc = backend.recovery
    tick = min(MAX_TICK_S, rc.response_timeout_s / 4, rc.stall_timeout_s / 4)
    dog = backend.watchdog
    preparing: asyncio.Task[None] | None = None
    rollover_from = rc.rollover_after_s
    while not backend.closed:
        await asyncio.sleep(tick)
        if not backend.connected:
            continue  # reconnecting: the reader owns the connection now
        now = time.monotonic()
        verdict = dog.observe(
            now,
            events_in=backend.events_in(),
            owed=backend.answer_owed(),
            responding=backend.responding(),
        )
        if verdict is not None:
            log.warning("watchdog: %s; %s", verdict.reason, verdict.action.replace("_", " "))
            if verdict.action == "nudge":
                await backend.nudge()
            else:
                give_up = verdict.action == "give_up"
                why = f"the model stopped answering: {verdict.reason}"
                backend.force_down(why, give_up=give_up)
            continue
        age = now - backend.session_started_at
        if backend.standby is not None:
            if backend.at_pause():
                await backend.swap_in_standby()
                rollover_from = rc.rollover_after_s
        elif age >= rollover_from and (preparing is None or preparing.done()):
            preparing = tg.create_task(
                _prepare_standby(backend), name=f"realtime-standby<{id(backend):x}>"
            )
            rollover_from = age + ROLLOVER_RETRY_S  # the next try, should this one fail


async def _prepare_standby(backend: OpenAIRealtimeBackend) -> None:
    started = backend.session_started_at
    try:
        ws, rt = await backend.open_session()
    except BackendError as exc:
        log.warning("rollover: no standby session yet: %s", exc)
        return
    if backend.closed or not backend.connected or backend.session_started_at != started:
        with contextlib.suppress(Exception):  # the session moved on meanwhile
            await ws.close()
        return
    backend.standby = (ws, rt)
