"""How the GPT-Live backend moves a call to a new session (see `openai_live`): after a lost
connection (reconnect with backoff inside the window, then restore) and at a rollover
(a standby session swapped in at a pause). A new socket is a new session, so what carries
over is the client's: the conversation digest (the new session's `input`), the newest held
audio, calls still owed an output, and commands made while no session was up. Functions of
the backend, kept apart so the backend stays a mover of frames."""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from foreman.audio.levels import peak
from foreman.backends import interface as b
from foreman.backends.live_open import close_reason
from foreman.backends.session_retry import retry_sessions
from foreman.exceptions import RemoteProtocolError
from foreman.io.realtime_ws import endpoint_host
from foreman.protocols.live.carryover import ConversationDigest, resume_instruction
from foreman.protocols.live.client import LiveClient
from foreman.protocols.live.lifecycle import SPEECH_PEAK, reconnect_worthwhile
from foreman.protocols.live.session_config import LiveSessionOptions, build_session_config

if TYPE_CHECKING:
    from foreman.backends.openai_live import OpenAILiveBackend

log = logging.getLogger("foreman.backends.openai_live")
_Out = list[b.BackendEvent]
MISSED: Final = "Said since this session's input was written:\n"
# Added to the instructions of every session after the first (its `input` holds the rest).
CONTINUED: Final = (
    "This conversation continues from an earlier session of this call; the input holds "
    "what was said so far. Do not greet the user again."
)


@dataclass(slots=True)
class Standby:
    """A started session waiting to take over. `seed_seq`: the digest's `last_seq` when its
    input was written; `drain`: the task reading (and dropping) what it sends meanwhile."""

    ws: ClientConnection
    live: LiveClient
    seed_seq: int
    drain: asyncio.Task[None] | None = None


def next_client(options: LiveSessionOptions, digest: ConversationDigest) -> LiveClient:
    """A client for the next session: the instructions, and the conversation so far as its
    input (a new session knows nothing of the last one)."""
    opts = dataclasses.replace(
        options,
        instructions=f"{options.instructions}\n\n{CONTINUED}".strip(),
        history=list(digest.seed()),
    )
    return LiveClient(build_session_config(opts))


def lost_reason(be: OpenAILiveBackend, ws: ClientConnection, exc: ConnectionClosed | None) -> str:
    if be.forced:
        return be.forced
    if be.ended_by_service:
        host = endpoint_host(be.options.endpoint)
        return f"{host}: the session closed ({be.ended_by_service})"
    return close_reason(ws, exc, be.options.endpoint)


def connection_lost(be: OpenAILiveBackend, lost: str) -> _Out:
    """The socket is gone: from now on commands wait in `owed` and audio is held. Close
    what was running so the session is not left waiting for it."""
    be._ws = None
    log.warning("model connection lost (%s); reconnecting", lost)
    out: _Out = [b.BackendWarning(f"{lost}; reconnecting", "reconnecting")]
    if be._replies.reply is not None:
        be.cut_reply = True
    out += be._replies.lost()
    be.digest.reply_ended()
    _carry_pending(be, be._live)
    return out


def _carry_pending(be: OpenAILiveBackend, live: LiveClient) -> None:
    """Calls of `live` still owed an output are answered on the next session."""
    pending = live.delegations.pending_calls
    be.carried.carry([be._calls[c] for c in sorted(pending) if c in be._calls])
    lost = [c for c in pending if c not in be._calls]
    for call_id in lost:  # never announced to the tool flow: nobody will answer them
        log.warning("call %s of the lost session was never requested; dropped", call_id)
    be._calls.clear()


async def reconnect(be: OpenAILiveBackend, lost: str) -> bool:
    """New sessions with backoff until one is restored, a fatal answer, or the window is
    spent (then `_error` says why)."""
    rc = be.recovery
    window = be._window
    now = time.monotonic()
    if now - be.restored_at >= rc.reconnect_window_s:
        window.begin(now)  # the last connection held: a new outage, a whole new window
    standby = be.standby
    if standby is not None:  # a rollover had one ready: try it first
        be.standby = None
        await _stop_drain(standby)
        with contextlib.suppress(ConnectionClosed):
            await restore(be, standby.ws, standby.live, standby.seed_seq)
            return _restored(be)
        with contextlib.suppress(Exception):
            await standby.ws.close()

    async def open_session() -> tuple[ClientConnection, LiveClient, int]:
        live = be.new_client()
        seed_seq = be.digest.last_seq
        return await be.open_session(live), live, seed_seq

    restored, why = await retry_sessions(
        window,
        lost,
        closing=lambda: be._closing,
        open_session=open_session,
        restore=lambda session: restore(be, *session),
        worthwhile=lambda code: reconnect_worthwhile(error_code=code),
    )
    if why is not None:
        be._error = why
    return _restored(be) if restored else False


def _restored(be: OpenAILiveBackend) -> bool:
    be.recovery_counters["reconnects"] += 1
    be.restored_at = time.monotonic()
    be.forced = None
    be.ended_by_service = None
    log.info("moved to a new model session %s (reconnect)", be._live.session_id)
    return True


async def restore(be: OpenAILiveBackend, ws: ClientConnection, live: LiveClient, seq: int) -> None:
    """The held audio, then the session takes over: what it missed as a silent fact, the
    commands made meanwhile, and what it should do first. Audio keeps going to the
    backlog until the last await, so nothing falls between."""
    spoke = False
    while True:
        chunks, heard = be.held.take()
        spoke = spoke or heard
        if not chunks:
            break
        for chunk in chunks:
            frame = live.send_audio(chunk)
            if frame is not None:
                await ws.send(frame)
    missed = be.digest.since(seq)
    be.use(ws, live)  # no await from the checks above to here
    if missed:
        live.append("thinking", MISSED + missed)
    owed, be.owed = be.owed, []
    for kind, text in owed:
        if kind == "typed":
            be.digest.typed(text)
            live.send_user_text(text)
        else:
            be.digest.note(text)
            live.append("thinking" if kind == "thinking" else "instructions", text)
            if kind == "instructions":
                be._pending += be._replies.expect_speech()
    first = resume_instruction(
        cut_reply=be.cut_reply, lost_speech=spoke, waiting=be.carried.names()
    )
    be.cut_reply = False
    if first is not None:
        live.append("instructions", first)
        be._pending += be._replies.expect_speech()
    be._pending += be._replies.work(live.busy)
    await be._flush()


async def swap_in_standby(be: OpenAILiveBackend) -> None:
    """Rollover at a pause: the standby session gets the audio from now on and is told what
    was said since its input was written; calls still owed an output are answered on it;
    the old session is closed (the reader moves over)."""
    standby, old_ws = be.standby, be._ws
    if standby is None or old_ws is None:
        return
    be.standby = None
    await _stop_drain(standby)
    if be._ws is not old_ws:  # the connection went down meanwhile: reconnect takes it
        be.standby = standby
        return
    old = be._live
    _carry_pending(be, old)
    missed = be.digest.since(standby.seed_seq)
    be.use(standby.ws, standby.live)
    if missed:
        standby.live.append("thinking", MISSED + missed)
    waiting = resume_instruction(cut_reply=False, lost_speech=False, waiting=be.carried.names())
    if waiting is not None:
        standby.live.append("thinking", waiting)
    be.recovery_counters["rollovers"] += 1
    log.info("moved to a new model session %s (rollover)", standby.live.session_id)
    old.close()
    try:
        await be._flush()
    finally:
        with contextlib.suppress(Exception):
            for text in old.data_to_send():  # session.close: the old session is finalised
                await old_ws.send(text)
        with contextlib.suppress(Exception):
            await old_ws.close()


async def drain_standby(be: OpenAILiveBackend, standby: Standby) -> None:
    """Read the standby session until it takes over: its track carries nothing to play yet
    (it must not pile up, to be played late), and a standby that closes is forgotten."""
    with contextlib.suppress(ConnectionClosed):
        async for frame in standby.ws:
            with contextlib.suppress(RemoteProtocolError):
                standby.live.receive(frame)
            if standby.live.closed:
                break
    if be.standby is standby:
        be.standby = None
        be.schedule.failed(time.time())
        log.warning("rollover: the standby session closed before taking over")


async def _stop_drain(standby: Standby) -> None:
    task, standby.drain = standby.drain, None
    if task is not None and not task.done():
        task.cancel()  # cancelling recv() loses no frame (websockets' documented guarantee)
        await asyncio.wait({task})


async def drop_standby(be: OpenAILiveBackend) -> None:
    standby, be.standby = be.standby, None
    if standby is not None:
        await _stop_drain(standby)
        with contextlib.suppress(Exception):
            await standby.ws.close()


def note_voice(be: OpenAILiveBackend, audio_b64: str) -> None:
    """Near a rollover only: when the caller last made a sound (a swap waits for a pause)."""
    try:
        chunk = binascii.a2b_base64(audio_b64)
    except (binascii.Error, ValueError):
        return
    if peak(chunk, be.input_format) >= SPEECH_PEAK:
        be.user_voice_at = time.monotonic()
