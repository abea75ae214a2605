"""Opening one configured Realtime session: connect, `session.created` -> `session.update`
-> `session.updated`, check the applied audio formats. Used at start, on every reconnect and
for a rollover's standby session; each gets a fresh `RealtimeClient`."""

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
from foreman.protocols.realtime import client_events as ce
from foreman.protocols.realtime import server_events as se
from foreman.protocols.realtime.client import RealtimeClient
from foreman.protocols.realtime.errors import ErrorNotice
from foreman.protocols.realtime.wire_formats import format_from_wire

__all__ = ["close_code", "close_reason", "error_line", "open_configured"]


async def open_configured(
    connect: Callable[[], Any],
    session_update: ce.SessionUpdate,
    *,
    endpoint: str,
    timeout_s: float,
    input_format: AudioFormat,
    output_format: AudioFormat,
) -> tuple[ClientConnection, RealtimeClient]:
    """A connected, configured session, or BackendError (one line; the socket is closed)."""
    ws: ClientConnection = await connect()
    rt = RealtimeClient(session_update)
    try:
        await asyncio.wait_for(_configure(ws, rt, input_format, output_format, endpoint), timeout_s)
    except TimeoutError:
        await _close(ws)
        raise BackendError(
            f"{endpoint_host(endpoint)}: no session.updated within {timeout_s:g} s",
            code="timeout",
        ) from None
    except BaseException:
        await _close(ws)
        raise
    return ws, rt


async def _close(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        await ws.close()


async def _configure(
    ws: ClientConnection,
    rt: RealtimeClient,
    input_format: AudioFormat,
    output_format: AudioFormat,
    endpoint: str,
) -> None:
    while not rt.configured:
        try:
            frame = await ws.recv()
        except ConnectionClosed as exc:
            raise BackendError(close_reason(ws, exc, endpoint), code="closed") from None
        try:
            received = rt.receive(frame)
        except RemoteProtocolError as exc:
            raise BackendError(f"bad frame from the server: {exc}", code="protocol") from None
        for item in received[1:]:
            if isinstance(item, ErrorNotice) and item.severity != "harmless":
                raise BackendError(error_line(item), code=item.code)
        if isinstance(received[0], se.SessionUpdated):
            check_formats(received[0].session, input_format, output_format)
        for text in rt.data_to_send():
            try:
                await ws.send(text)
            except ConnectionClosed as exc:
                raise BackendError(close_reason(ws, exc, endpoint), code="closed") from None


def check_formats(session: dict[str, Any], input_format: AudioFormat, output: AudioFormat) -> None:
    # A format mismatch is heard as noise and breaks the service's VAD.
    audio = session.get("audio") or {}
    for direction, want in (("input", input_format), ("output", output)):
        fmt = (audio.get(direction) or {}).get("format")
        if fmt is None:
            continue
        try:
            got = format_from_wire(fmt)
        except ValueError:
            got = None
        if got != want:
            raise BackendError(
                f"the server applied {direction} format {fmt} instead of {want}",
                code="format_mismatch",
            )


def close_reason(ws: ClientConnection | None, exc: ConnectionClosed | None, endpoint: str) -> str:
    """One line saying how the connection ended."""
    code = exc.rcvd.code if exc is not None and exc.rcvd else (ws.close_code if ws else None)
    reason = exc.rcvd.reason if exc is not None and exc.rcvd else (ws.close_reason if ws else "")
    host = endpoint_host(endpoint) if endpoint else "the model"
    if exc is not None and exc.sent is not None and exc.sent.code == 1009:
        # We closed it: a server event was over the cap ([limits] model_max_message_bytes).
        return f"{host}: a server event was too big; connection closed (1009)"
    if code is None:
        return f"{host}: connection lost"
    return f"{host}: connection closed ({code}{': ' + reason if reason else ''})"


def error_line(n: ErrorNotice) -> str:
    code = f" ({n.code})" if n.code else ""
    return f"server error{code}: {n.message}".replace("\n", " ")


def close_code(ws: ClientConnection, exc: ConnectionClosed | None) -> int | None:
    """The code that ended the connection: the peer's, else ours (1009: an event over our
    size cap), else what the library recorded (1006 for a drop)."""
    if exc is not None and exc.rcvd is not None:
        return exc.rcvd.code
    if exc is not None and exc.sent is not None:
        return exc.sent.code
    return ws.close_code
