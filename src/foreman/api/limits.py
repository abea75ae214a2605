"""Admission limits for HTTP requests, as pure ASGI middleware (no request buffering of its
own, no BaseHTTPMiddleware: the body is watched as it streams in).

* `RequestRateLimit`: a token bucket per client address for the Twilio webhook paths and
  for `/api/*` (`policy.rate_limit.RateLimiter`); an empty bucket answers 429 with
  `Retry-After` before the app sees the request.
* `RequestBodyLimit`: a `Content-Length` above the path's limit is answered 413 before a
  byte of the body is read; a body without one is counted as it arrives and answered 413
  as soon as it passes the limit. The body must also be complete within `body_timeout_s`
  (408). Either way the answer says `connection: close`, so the server stops reading, and
  the app is told the client went away: it never holds more than the limit plus one read.

Twilio's paths (`/twilio/*`) have their own, smaller body limit: Twilio's webhooks are a few
kilobytes (https://www.twilio.com/docs/usage/webhooks/voice-webhooks).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foreman.config import LimitsConfig
from foreman.policy.rate_limit import RateLimiter

__all__ = ["RequestBodyLimit", "RequestRateLimit", "install_limits"]

log = logging.getLogger("foreman.api.limits")

TWILIO_PREFIX = "/twilio/"
API_PREFIX = "/api/"


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestRateLimit:
    """429 with `Retry-After` for a client address over its rate (per path family)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        webhook: RateLimiter | None,
        api: RateLimiter | None,
        now: Callable[[], float],
    ) -> None:
        self.app = app
        self._webhook = webhook
        self._api = api
        self._now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope.get("path", "")
            limiter = (
                self._webhook
                if path.startswith(TWILIO_PREFIX)
                else self._api
                if path.startswith(API_PREFIX)
                else None
            )
            if limiter is not None:
                client = _client(scope)
                wait = limiter.take(client, self._now())
                if wait > 0:
                    if limiter.refused == 1 or limiter.refused % 1000 == 0:
                        log.warning("< %s refused: rate limit (%d so far)", path, limiter.refused)
                    retry = RateLimiter.retry_after(wait)
                    await _answer(
                        send,
                        429,
                        f"too many requests from this address; retry in {retry} s",
                        [(b"retry-after", str(retry).encode())],
                    )
                    return
        await self.app(scope, receive, send)


class RequestBodyLimit:
    """413 for a body over the path's limit, 408 for one that does not arrive in time."""

    def __init__(
        self, app: ASGIApp, *, webhook_bytes: int, api_bytes: int, body_timeout_s: float
    ) -> None:
        self.app = app
        self._webhook_bytes = webhook_bytes
        self._api_bytes = api_bytes
        self._timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self._webhook_bytes if path.startswith(TWILIO_PREFIX) else self._api_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            log.warning("< %s refused: Content-Length %d over %d", path, declared, limit)
            await _answer(send, 413, _too_large(limit), [(b"connection", b"close")])
            return
        guard = _BodyGuard(receive, send, limit, self._timeout_s, path)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if guard.refused is None:
                raise
            # The app was told the client went away (our doing): its error is expected.


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server's HTTP parser refuses these; nothing to add
    return None


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes"


class _BodyGuard:
    """The app's view of one request: body messages counted, a deadline on the body."""

    __slots__ = (
        "_deadline", "_limit", "_path", "_receive", "_send", "_started", "_timeout_s",
        "complete", "received", "refused",
    )  # fmt: skip

    def __init__(self, receive: Receive, send: Send, limit: int, timeout_s: float, path: str):
        self._receive = receive
        self._send = send
        self._limit = limit
        self._timeout_s = timeout_s
        self._path = path
        self._deadline: float | None = None
        self._started = False  # the app's response has begun
        self.complete = False  # the whole body has been handed over
        self.received = 0
        self.refused: int | None = None  # the status we answered instead of the app

    async def receive(self) -> Message:
        if self.refused is not None:
            return {"type": "http.disconnect"}
        if self.complete:  # after the body: waiting for a disconnect, unbounded by design
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self._timeout_s
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            await self._refuse(408, f"request body not complete within {self._timeout_s:g} s")
            return {"type": "http.disconnect"}
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self._limit:
                await self._refuse(413, _too_large(self._limit))
                return {"type": "http.disconnect"}
            self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refused is not None:
            return  # we answered; whatever the app makes of the vanished client is dropped
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)

    async def _refuse(self, status: int, detail: str) -> None:
        self.refused = status
        log.warning("< %s refused: %s", self._path, detail)
        if not self._started:
            await _answer(self._send, status, detail, [(b"connection", b"close")])


def install_limits(app: Any, limits: LimitsConfig, now: Callable[[], float]) -> None:
    """Add both middlewares to a FastAPI/Starlette app, the rate limit outermost (a refused
    client costs the least). Call after every other `add_middleware` that must run later."""
    app.add_middleware(
        RequestBodyLimit,
        webhook_bytes=limits.webhook_max_body_bytes,
        api_bytes=limits.api_max_body_bytes,
        body_timeout_s=limits.body_timeout_s,
    )

    def limiter(rate: float, burst: int) -> RateLimiter | None:
        if rate <= 0:
            return None
        return RateLimiter(rate, burst, max_clients=limits.rate_limit_clients)

    app.add_middleware(
        RequestRateLimit,
        webhook=limiter(limits.webhook_rate_per_s, limits.webhook_burst),
        api=limiter(limits.api_rate_per_s, limits.api_burst),
        now=now,
    )
