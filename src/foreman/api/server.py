"""Serving the app with uvicorn, and shutting it down in order.

uvicorn alone shuts down in the wrong order for Foreman: it waits for every open response to end
before it runs the app's lifespan shutdown, and an event stream (`GET /api/events`) or a
phone call never ends by itself, so Ctrl-C hung; a second Ctrl-C then cancelled everything
mid-flight (a wall of tracebacks) and skipped the shutdown. `ForemanServer` shuts down like this:

1. the first SIGINT or SIGTERM: end the server's own work (`app.state.drain`, within
   `app.state.drain_limit_s`) while still listening, so a new call's webhook is answered
   with a polite hang-up rather than refused: live calls get `[limits] shutdown_grace_s`
   to end by themselves, then each hears a goodbye and is hung up through Twilio REST;
   the desk session ends (every record is written with its real reason); then every event
   stream ends (clients see the stream close);
2. no more new connections;
3. uvicorn's own shutdown: the connections left (now idle) close, then the lifespan
   shutdown closes the services and the stores.

A second signal exits at once with one line; what was still live is recorded as
interrupted at the next start. A shutdown asked for by a signal is a clean exit (status 0).
See https://www.uvicorn.org/server-behavior/ and uvicorn's `Server.shutdown`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, Final

import uvicorn

from foreman.session.registry import SHUTDOWN_LIMIT_S

log = logging.getLogger("foreman")

DRAIN_LIMIT_S: Final = SHUTDOWN_LIMIT_S + 1.0  # the sessions' own limit, then the records
GRACE_S: Final = 1  # then uvicorn cancels whatever response is still running

Drain = Callable[[], Awaitable[None]]


class ForemanServer(uvicorn.Server):
    """uvicorn's server with the shutdown described above. `drain` ends the app's own work
    (None: plain uvicorn order)."""

    def __init__(
        self,
        config: uvicorn.Config,
        drain: Drain | None = None,
        *,
        drain_limit_s: float = DRAIN_LIMIT_S,
    ) -> None:
        super().__init__(config)
        self._drain = drain
        self._drain_limit_s = drain_limit_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            _exit_now(sig)
        # Not kept for uvicorn to raise again once served: a shutdown asked for is no failure.
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info("shutting down: ending calls, sessions and event streams (Ctrl-C again: at once)")
        if self._drain is not None:
            await self._end_work()  # still listening: a new call is told to call back
        for server in getattr(self, "servers", ()):
            server.close()
        await super().shutdown(sockets)

    async def _end_work(self) -> None:
        assert self._drain is not None
        try:
            async with asyncio.timeout(self._drain_limit_s):
                await self._drain()
        except TimeoutError:
            limit = self._drain_limit_s
            log.warning("the sessions did not all end within %g s; shutting down anyway", limit)
        except Exception:
            log.exception("ending the sessions failed; shutting down anyway")


def _exit_now(sig: int) -> None:
    """The second signal: the user wants out now. One line, no tracebacks, no waiting."""
    log.warning(
        "%s again: exiting now (calls still live are recorded as interrupted at the next start)",
        signal.Signals(sig).name,
    )
    os._exit(128 + sig)  # as a shell reports a command ended by that signal


def serve(
    app: Any, sockets: list[socket.socket], *, log_level: str, options: dict[str, Any]
) -> bool:
    """Serve `app` on the listening `sockets` until a signal ends it. `options` are the
    protocol settings and limits (`io.uvicorn_settings`). Logging must be set up already
    (`foreman.logs.configure_logging`): uvicorn keeps it. Returns whether the server started
    (False: the app's start-up failed)."""
    config = uvicorn.Config(
        app,
        **options,
        log_level=log_level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACE_S,
    )
    server = ForemanServer(
        config,
        getattr(app.state, "drain", None),
        drain_limit_s=getattr(app.state, "drain_limit_s", DRAIN_LIMIT_S),
    )
    server.run(sockets=sockets)
    return server.started
