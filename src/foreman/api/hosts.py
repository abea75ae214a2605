"""DNS-rebinding and cross-site protection for a server bound to loopback, as pure ASGI
middleware.

A loopback bind has no API token, so anything that can make this machine's browser send a
request to it could drive the API: a page on another site (a cross-origin POST still
arrives, with that site's `Origin`), or a page whose own host name was re-pointed at
127.0.0.1 (DNS rebinding: same origin to the browser, but the `Host` header names the
attacker's domain). Requests are therefore served only when `Host` names this machine (or a
name the operator allowed) and `Origin`, when sent, names one of those too. Command-line
clients send no `Origin` and a loopback `Host`, so they are unaffected.

Twilio's paths are exempt: they arrive through a tunnel under the public host name and carry
Twilio's signatures, which are checked in their routes. The rest of the API answers under the
public name only when the server has an API token: a tunnel to a loopback server would
otherwise hand the whole API (approvals included) to anyone who finds its URL.
See https://developer.mozilla.org/docs/Web/Security/Attacks/DNS_rebinding_attacks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
EXEMPT_PREFIXES = ("/twilio/",)


def host_name(value: str) -> str:
    """The host name of a `Host` header value (port and IPv6 brackets removed), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def origin_host(value: str) -> str | None:
    """The host name of an `Origin` header value; None when it names no host ("null")."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower()


class LocalOriginMiddleware:
    """Refuse requests whose `Host` or `Origin` names another site (HTTP 403, WebSocket
    closed before accept). Install only on loopback binds."""

    def __init__(
        self, app: ASGIApp, allowed_hosts: Iterable[str], tunnel_hosts: Iterable[str] = ()
    ) -> None:
        """`tunnel_hosts`: public names that reach this server through a tunnel, refused
        outside Twilio's paths with a message naming the fix."""
        self.app = app
        self._allowed = LOOPBACK_NAMES | {host_name(h) for h in allowed_hosts if h and host_name(h)}
        self._tunnel = {host_name(h) for h in tunnel_hosts if h} - self._allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path", "").startswith(
            EXEMPT_PREFIXES
        ):
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": problem[:120]})
            return
        body = json.dumps({"detail": problem}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _problem(self, scope: Scope) -> str | None:
        host = origin = None
        for name, value in scope.get("headers", []):
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        if host is not None and host_name(host) in self._tunnel:
            return (
                f"the API is not served under the public name {host_name(host)!r} without an "
                "API token (set [server] api_token, or use the server's loopback address)"
            )
        if host is None or host_name(host) not in self._allowed:
            return (
                f"Host {host_name(host or '')!r} is not this server: a loopback server answers "
                "only to its own names (add others to [server] allowed_hosts)"
            )
        if origin is not None and origin_host(origin) not in self._allowed:
            return f"cross-site request from Origin {origin[:80]!r} refused"
        return None
