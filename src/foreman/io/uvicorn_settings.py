"""How uvicorn serves Foreman: protocol implementations and the connection limits of
`[limits]`, in one place for every server (`foreman serve`, the in-process test server,
benchmarks).

    config = uvicorn.Config(app, **uvicorn_settings(settings), log_level=..., lifespan=...)

The caller adds only what is its own (the app, logging, lifespan, shutdown). The request
limits that need the app's view (body sizes, rate limits) are middleware in `foreman.api`.
uvicorn's settings: https://www.uvicorn.org/settings/
"""

from __future__ import annotations

from typing import Any

from foreman.config import Settings
from foreman.io.header_deadline import header_deadline_protocol

__all__ = ["uvicorn_settings"]


def uvicorn_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config`: h11 with a header deadline, the sans-I/O
    WebSocket implementation with a message cap, keep-alive and concurrency limits."""
    limits = settings.limits
    return {
        # h11: the only HTTP implementation the header deadline is written for (uvicorn's
        # "auto" would switch to httptools when it happens to be installed).
        "http": header_deadline_protocol(limits.header_timeout_s),
        "ws": "websockets-sansio",
        # A bigger message closes that socket with 1009 (message too big); its neighbours
        # are untouched. Twilio's media messages are about 1 KB.
        "ws_max_size": limits.ws_max_message_bytes,
        # Compression costs CPU on every message, base64 audio does not compress, and
        # Twilio does not ask for it.
        "ws_per_message_deflate": False,
        "timeout_keep_alive": limits.keep_alive_timeout_s,
        "limit_concurrency": limits.max_connections,
    }
