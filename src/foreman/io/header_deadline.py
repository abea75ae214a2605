"""uvicorn's h11 protocol with a deadline on slow clients.

uvicorn closes an idle kept-alive connection after `timeout_keep_alive`, but has no deadline
for a request that is still arriving: its keep-alive timer is cancelled by the first byte,
so a client sending its headers one byte every two seconds holds a connection (and a file
descriptor) for ever, and a few hundred such clients hold the server (slowloris). This
protocol gives the client `header_timeout_s` from its first byte to finish the request line
and headers, and the same again to finish a body it is still sending after we answered
without reading it. A body the app reads is bounded by the limits middleware.

When the deadline passes, the client gets `408 Request Timeout` (if nothing was answered on
this request yet) and the connection is closed. Apache's `RequestReadTimeout` and nginx's
`client_header_timeout` do the same.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeaderDeadlineProtocol", "header_deadline_protocol"]

_REASON = b"the request did not arrive in time\n"
REQUEST_TIMEOUT: Final = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_REASON), _REASON)
)


class HeaderDeadlineProtocol(H11Protocol):
    """Build with `header_deadline_protocol(timeout_s)` and pass it as uvicorn's `http`."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is a slow client too

    def data_received(self, data: bytes) -> None:
        if self._waiting_on_client():
            self._arm()
        super().data_received(data)
        if not self._waiting_on_client():
            self._disarm()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()  # the WebSocket protocol takes over (with its own pings)
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_on_client(self) -> bool:
        """The client owes us bytes and nothing of ours is waiting on the app: a request's
        head, or the rest of a body nobody will read (we have answered already)."""
        their = self.conn.their_state
        if their is h11.IDLE:
            return True
        cycle = self.cycle
        return their is h11.SEND_BODY and cycle is not None and cycle.response_complete

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:  # a request's head: nothing answered it yet
            transport.write(REQUEST_TIMEOUT)
        transport.close()


def header_deadline_protocol(timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class with this deadline (uvicorn builds one instance per connection)."""
    if timeout_s <= 0:
        raise ValueError("the header deadline must be positive")
    attrs = {"header_timeout_s": timeout_s}
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), attrs)
