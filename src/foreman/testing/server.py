"""Serve an ASGI app on loopback inside the running event loop (tests, benchmarks).

The listening socket is bound and listening before uvicorn starts, so clients may connect
at once: their connections wait in the backlog. No readiness polling is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from foreman.config import Settings
from foreman.io.uvicorn_settings import uvicorn_settings


@contextlib.asynccontextmanager
async def serve_app(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    grace_s: float | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[str]:
    """Yield the base URL (http://host:port) while `app` is served; shut down cleanly.

    Served as `foreman serve` serves it (`uvicorn_settings`), with the limits of `settings`,
    else of the app's own settings (`app.state.settings`), else the defaults. `port` 0 picks
    a free one; give the port of an earlier run to serve "the same server" again (a restart,
    as clients see it). Shutting down waits for open requests to finish; with `grace_s` it
    cuts those still open after that many seconds (an event stream never finishes by
    itself), as a server that goes away does."""
    if settings is None:
        settings = getattr(getattr(app, "state", None), "settings", None) or Settings()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        **uvicorn_settings(settings),
        log_level="warning",
        lifespan="on",
        access_log=False,
        # Annotated as int, used as a timeout for asyncio.wait_for: a float works.
        timeout_graceful_shutdown=grace_s,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for subprocess servers that must be told a port)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
