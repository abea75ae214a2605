"""How the Realtime backend survives a lost connection (see `openai_realtime`): close what
was running, reconnect with backoff inside the window, and restore the conversation, the
held audio and what was owed on the new session. Functions of the backend, kept apart so
the backend stays a mover of frames."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Final

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from foreman.backends import interface as b
from foreman.backends.realtime_open import close_reason
from foreman.backends.session_retry import retry_sessions
from foreman.io.realtime_ws import endpoint_host
from foreman.protocols.realtime.client import RealtimeClient
from foreman.protocols.realtime.errors import reconnect_worthwhile

if TYPE_CHECKING:
    from foreman.backends.openai_realtime import OpenAIRealtimeBackend

log = logging.getLogger("foreman.backends.openai_realtime")
_Out = list[b.BackendEvent]
# Asked of the model on a new session when the drop cut its reply short.
CONTINUE_AFTER_DROP: Final = (
    "The line dropped for a moment while you were speaking; the conversation shows what the "
    "user heard. Continue from there in a few words, without repeating what was said."
)
# ... and when it lost the user's last words.
ASK_TO_REPEAT: Final = (
    "The line dropped for a moment and the user's last words were lost. Say in a few words "
    "that the line dropped, and ask them to repeat what they just said."
)


def lost_reason(
    be: OpenAIRealtimeBackend, ws: ClientConnection, exc: ConnectionClosed | None
) -> str:
    if be._forced:
        return be._forced
    if be._expired:
        return f"{endpoint_host(be.options.endpoint)}: the session reached its time limit"
    return close_reason(ws, exc, be.options.endpoint)


def connection_lost(be: OpenAIRealtimeBackend, ws: ClientConnection, lost: str) -> _Out:
    """The socket is gone: from now on commands go to the ledger and audio is held.
    Close what was running so the session is not left waiting for it."""
    be._ws = None
    log.warning("model connection lost (%s); reconnecting", lost)
    out: _Out = [b.BackendWarning(f"{lost}; reconnecting", "reconnecting")]
    reply = be._proto.active_response_id
    for item_id, text in be.ledger.unfinished_assistant():
        be.ledger.finish_assistant(item_id)
        if text:
            out.append(b.TranscriptSegment("assistant", text, final=True, reply=reply))
    if be._open_segment is not None:
        out.append(b.SegmentEnded(be._open_segment))
    if reply is not None:
        be._cut_reply = True
        out.append(b.ReplyEnded(reply, "incomplete", "connection lost"))
    if be._turn_owed or be._rt.awaiting_response or (not be._rt.idle and not reply):
        be._owe_response = True
    # The user finished a turn the old session never committed or never transcribed: the
    # new session cannot know what was said (a turn still being spoken goes on in the held
    # audio instead).
    if (be._turn_open and not be._user_speaking) or (
        be._turn_owed and be.ledger.last_user_unheard()
    ):
        be._ask_repeat = True
    if not be._rt.idle or be._turn_owed:
        out.append(b.AssistantIdle())
    be._proto.close()
    return out


async def reconnect(be: OpenAIRealtimeBackend, lost: str) -> bool:
    """New sessions with backoff until one is restored, a fatal answer, or the window
    is spent (then `_error` says why)."""
    rc = be.recovery
    window = be._window
    now = time.monotonic()
    if now - be._restored_at >= rc.reconnect_window_s:
        window.begin(now)  # the last connection held: a new outage, a whole new window
    # else the connection flapped: the same outage goes on, in the window already begun
    if be.standby is not None:  # a rollover had one ready: try it first
        (ws, rt), be.standby = be.standby, None
        with contextlib.suppress(ConnectionClosed):
            await restore(be, ws, rt)
            return _restored(be)
        with contextlib.suppress(Exception):
            await ws.close()

    restored, why = await retry_sessions(
        window,
        lost,
        closing=lambda: be._closing,
        open_session=be.open_session,
        restore=lambda session: restore(be, *session),
        worthwhile=lambda code: reconnect_worthwhile(error_code=code),
    )
    if why is not None:
        be._error = why
    return _restored(be) if restored else False


def _restored(be: OpenAIRealtimeBackend) -> bool:
    be.recovery_counters["reconnects"] += 1
    be._restored_at = time.monotonic()
    be._forced = None
    be._expired = False
    return True


async def restore(be: OpenAIRealtimeBackend, ws: ClientConnection, rt: RealtimeClient) -> None:
    """Replay the conversation, then the held audio, then ask for what is owed. Commands
    keep going to the ledger until the last await, so nothing falls between."""
    seq = 0
    while True:
        replay = be.ledger.replay(after=seq)
        seq = be.ledger.last_seq
        for item in replay:
            rt.add_item(item)
        for text in rt.data_to_send():
            await ws.send(text)
        if be._backlog:
            for chunk in be._backlog.drain():
                await ws.send(rt.send_audio(chunk))
            continue
        if be.ledger.last_seq == seq:
            break
    be._use(ws, rt)  # no await from the checks above to here
    if be._owe_commit:
        rt.commit_turn()
    if be._ask_repeat:
        rt.request_response(ASK_TO_REPEAT)
    elif be._cut_reply:
        rt.request_response(CONTINUE_AFTER_DROP)
    elif be._owe_response:
        rt.request_response(be._owe_instructions)
    be._owe_commit = be._owe_response = be._cut_reply = be._ask_repeat = False
    be._owe_instructions = None
    await be._flush()
