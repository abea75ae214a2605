"""Opening one GPT-Live session: connect, `session.start` -> `session.started`, check the
applied audio format. Used at the start of a call, on every reconnect and for a rollover's
standby session; each gets a fresh `LiveClient` (a new socket is a new session)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from foreman.audio.formats import AudioFormat
from foreman.exceptions import BackendError, RemoteProtocolError
from foreman.io.realtime_ws import endpoint_host
from foreman.protocols.live import events as ev
from foreman.protocols.live.client import LiveClient, LivePhase
from foreman.protocols.live.session_config import audio_format_to_wire

__all__ = ["close_code", "close_reason", "error_line", "open_session"]


async def open_session(
    connect: Callable[[], Any],
    live: LiveClient,
    *,
    endpoint: str,
    timeout_s: float,
    audio_format: AudioFormat,
) -> ClientConnection:
    """The connected socket of `live`, started; or BackendError (one line; closed)."""
    ws: ClientConnection = await connect()
    try:
        await asyncio.wait_for(_handshake(ws, live, audio_format, endpoint), timeout_s)
    except TimeoutError:
        await _close(ws)
        raise BackendError(
            f"{endpoint_host(endpoint)}: no session.started within {timeout_s:g} s",
            code="timeout",
        ) from None
    except BaseException:
        await _close(ws)
        raise
    return ws


async def _close(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        await ws.close()


async def _handshake(
    ws: ClientConnection, live: LiveClient, audio_format: AudioFormat, endpoint: str
) -> None:
    """session.start -> session.started (the first event; an error means no session)."""
    live.start()
    for text in live.data_to_send():
        await ws.send(text)
    while live.phase is LivePhase.STARTING:
        try:
            frame = await ws.recv()
        except ConnectionClosed as exc:
            raise BackendError(close_reason(ws, exc, endpoint), code="closed") from None
        try:
            received = live.receive(frame)
        except RemoteProtocolError as exc:
            raise BackendError(f"bad frame from the server: {exc}", code="protocol") from None
        first = received[0]
        if isinstance(first, ev.ErrorEvent):
            raise BackendError(error_line(first), code=first.code)
        if isinstance(first, ev.SessionClosed):
            raise BackendError(f"session closed at start ({first.reason})", code="closed")
        if isinstance(first, ev.SessionStarted):
            _check_format(first.session, audio_format)


def _check_format(session: Any, audio_format: AudioFormat) -> None:
    # A format mismatch is heard as noise: refuse rather than play it.
    fmt = ((session.get("audio") or {}) if isinstance(session, dict) else {}).get("format")
    if fmt is not None and fmt != audio_format_to_wire(audio_format):
        raise BackendError(
            f"the server applied audio format {fmt} instead of {audio_format}",
            code="format_mismatch",
        )


def close_reason(ws: ClientConnection | None, exc: ConnectionClosed | None, endpoint: str) -> str:
    """One line saying how the connection ended."""
    rcvd = exc.rcvd if exc is not None else None
    code = rcvd.code if rcvd else (ws.close_code if ws else None)
    reason = rcvd.reason if rcvd else (ws.close_reason if ws else "")
    host = endpoint_host(endpoint)
    if exc is not None and exc.sent is not None and exc.sent.code == 1009:
        return f"{host}: a server event was too big; connection closed (1009)"
    if code is None:
        return f"{host}: connection lost"
    return f"{host}: connection closed ({code}{': ' + reason if reason else ''})"


def close_code(ws: ClientConnection, exc: ConnectionClosed | None) -> int | None:
    """The peer's code, else ours (1009), else what the library recorded (1006: a drop)."""
    if exc is not None and exc.rcvd is not None:
        return exc.rcvd.code
    if exc is not None and exc.sent is not None:
        return exc.sent.code
    return ws.close_code


def error_line(e: ev.ErrorEvent) -> str:
    code = f" ({e.code})" if e.code else ""
    return f"server error{code}: {e.message}".replace("\n", " ")
