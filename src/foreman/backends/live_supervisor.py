"""The GPT-Live backend's supervisor: one task per session, in the session's task group,
that wakes a few times a second (never per audio frame) to

* feed the `Watchdog` the frames the backend counts: GPT-Live streams its track for the
  whole session, so a track that stops arriving for `stall_timeout_s` is a stalled
  session. The first time it is reconnected (a new session with the conversation carried
  over); if it stalls again before a reply has run to its end, the call ends with the
  reason. There is nothing to nudge: Live has no cancel and no response to ask again.
* roll over before the session expires: `rollover_margin_s` before `expires_at` a standby
  session is opened (seeded with the conversation so far) while the old one keeps
  serving; at the first pause (no reply running or expected, no delegated work running,
  the caller quiet) it takes over. If no pause comes in time, the service's "expired"
  close is handled as a reconnect that tries the standby first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Final

from foreman.backends import live_recovery as recovery
from foreman.exceptions import BackendError

if TYPE_CHECKING:
    from foreman.backends.openai_live import OpenAILiveBackend

log = logging.getLogger(__name__)

MAX_TICK_S: Final = 0.25  # also how long a pause may go unnoticed by a rollover
QUIET_S: Final = 1.0  # the caller made no sound for this long: a pause


async def supervise(backend: OpenAILiveBackend, tg: asyncio.TaskGroup) -> None:
    tick = min(MAX_TICK_S, backend.recovery.stall_timeout_s / 4)
    dog = backend.watchdog
    preparing: asyncio.Task[None] | None = None
    while not backend.closed:
        await asyncio.sleep(tick)
        if not backend.connected:
            continue  # reconnecting: the reader owns the connection now
        now = time.monotonic()
        verdict = dog.observe(
            now, events_in=backend._live.counters["frames_in"], owed=False, responding=True
        )
        if verdict is not None:
            give_up = verdict.action == "give_up"
            log.warning("watchdog: %s; %s", verdict.reason, verdict.action.replace("_", " "))
            force_down(backend, f"the model stopped answering: {verdict.reason}", give_up=give_up)
            continue
        if backend.standby is not None:
            if at_pause(backend, now):
                await recovery.swap_in_standby(backend)
        elif backend.schedule.should_prepare(time.time()) and (
            preparing is None or preparing.done()
        ):
            backend.schedule.preparing()
            preparing = tg.create_task(
                _prepare_standby(backend, tg), name=f"live-standby<{id(backend):x}>"
            )


async def _prepare_standby(backend: OpenAILiveBackend, tg: asyncio.TaskGroup) -> None:
    started = backend.session_started_at
    seed_seq = backend.digest.last_seq
    live = backend.new_client()
    try:
        ws = await backend.open_session(live)
    except BackendError as exc:
        log.warning("rollover: no standby session yet: %s", exc)
        backend.schedule.failed(time.time())
        return
    if backend.closed or not backend.connected or backend.session_started_at != started:
        with contextlib.suppress(Exception):  # the call moved on meanwhile
            await ws.close()
        return
    standby = recovery.Standby(ws, live, seed_seq)
    backend.standby = standby
    standby.drain = tg.create_task(
        recovery.drain_standby(backend, standby), name=f"live-standby-drain<{id(backend):x}>"
    )
    log.info("rollover: standby session %s ready; waiting for a pause", live.session_id)


def at_pause(be: OpenAILiveBackend, now: float) -> bool:
    """Nobody talks and nothing runs: a swap is unheard."""
    return (
        not be._replies.speaking
        and not be._live.delegations.in_flight
        and now - be.user_voice_at >= QUIET_S
    )


def force_down(be: OpenAILiveBackend, reason: str, *, give_up: bool = False) -> None:
    """Take the connection down now: the reader reconnects, or with `give_up` ends the
    session with `reason`."""
    ws = be._ws
    if ws is None:
        return
    if give_up:
        be._error = reason
    else:
        be.recovery_counters["watchdog_reconnects"] += 1
        be.forced = reason
    ws.transport.abort()  # no close handshake with a peer that stopped answering
