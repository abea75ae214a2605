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
from foreman.protocols.realtime import client_events as ce
from foreman.protocols.realtime.state import Phase

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
        if not connected(backend):
            continue  # reconnecting: the reader owns the connection now
        now = time.monotonic()
        verdict = dog.observe(
            now,
            events_in=events_in(backend),
            owed=answer_owed(backend),
            responding=responding(backend),
        )
        if verdict is not None:
            log.warning("watchdog: %s; %s", verdict.reason, verdict.action.replace("_", " "))
            if verdict.action == "nudge":
                await nudge(backend)
            else:
                give_up = verdict.action == "give_up"
                why = f"the model stopped answering: {verdict.reason}"
                force_down(backend, why, give_up=give_up)
            continue
        age = now - backend.session_started_at
        if backend.standby is not None:
            if at_pause(backend):
                await swap_in_standby(backend)
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
    if backend.closed or not connected(backend) or backend.session_started_at != started:
        with contextlib.suppress(Exception):  # the session moved on meanwhile
            await ws.close()
        return
    backend.standby = (ws, rt)


def answer_owed(be: OpenAIRealtimeBackend) -> bool:
    return be._turn_owed or be._rt.awaiting_response


def responding(be: OpenAIRealtimeBackend) -> bool:
    return be._rt.responding


def events_in(be: OpenAIRealtimeBackend) -> int:
    return be._proto.counters["events_in"]


def at_pause(be: OpenAIRealtimeBackend) -> bool:
    """The assistant idle, the user not talking, nothing owed: a rollover is unheard."""
    return be._ws is not None and be._rt.idle and not be._user_speaking and not be._turn_owed


def connected(be: OpenAIRealtimeBackend) -> bool:
    return be._ws is not None


async def nudge(be: OpenAIRealtimeBackend) -> None:
    """Cancel what runs and ask again (the watchdog's first step)."""
    if be._ws is None or be._error is not None or be._proto.phase is not Phase.CONFIGURED:
        return  # going down anyway: the reader reports why
    be.recovery_counters["watchdog_nudges"] += 1
    if be._rt.responding:
        be._rt.queue(ce.ResponseCancel())
        be._rt.request_response()  # sent once the cancelled response is done
    else:
        be._turn_owed = False
        be._rt.retry_response()
    await be._flush()


def force_down(be: OpenAIRealtimeBackend, reason: str, *, give_up: bool = False) -> None:
    """Take the connection down now: the reader reconnects, or with `give_up` ends the
    session with `reason`."""
    ws = be._ws
    if ws is None:
        return
    if give_up:
        be._error = reason
    else:
        be.recovery_counters["watchdog_reconnects"] += 1
        be._forced = reason
    ws.transport.abort()  # no close handshake with a peer that stopped answering


async def swap_in_standby(be: OpenAIRealtimeBackend) -> None:
    """Rollover at a pause: the standby session gets the conversation and the audio from
    now on; the old one is closed (the reader moves over)."""
    if be.standby is None or be._ws is None:
        return
    (ws, rt), be.standby = be.standby, None
    old = be._ws
    for item in be.ledger.replay():
        rt.add_item(item)
    be._use(ws, rt)
    be.recovery_counters["rollovers"] += 1
    log.info("moved to a new model session %s (rollover)", rt.session.session_id)
    try:
        await be._flush()
    finally:
        with contextlib.suppress(Exception):
            await old.close()
