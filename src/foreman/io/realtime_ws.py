"""WebSocket transport to a Realtime endpoint, on the `websockets` library.

Only connection set-up and error translation live here: every failure becomes a
`BackendError` with a one-line message fit for `status.last_error` (never a traceback, never
the key). Connection rules (Bearer auth, `model` query, no beta header):
https://developers.openai.com/api/docs/guides/realtime-websocket. Server events carry whole
items, so the message cap is generous (`max_size`), but there is one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from foreman.exceptions import BackendError
from foreman.io.redact import redacting_logger
from foreman.protocols.realtime.endpoint import endpoint_problem

OPENAI_HOST = "api.openai.com"
_WIRE_LOG = redacting_logger("foreman.io.realtime_ws.wire")


def realtime_url(endpoint: str, model: str) -> str:
    """The endpoint with `model=` in its query (replacing one already there)."""
    parts = urlsplit(endpoint)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "model"]
    query.append(("model", model))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def endpoint_host(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return parts.netloc.rsplit("@", 1)[-1]


def needs_api_key(endpoint: str) -> bool:
    """The real service needs a key; a mock on loopback does not."""
    host = urlsplit(endpoint).hostname or ""
    return host == OPENAI_HOST or host.endswith(".openai.com")


def key_allowed(endpoint: str, allowed_hosts: Iterable[str]) -> bool:
    """May the API key be sent to `endpoint`? Only to a host the config file lists, and only
    over TLS (wss://, or https:// for an HTTP API) unless that host is this machine. A start
    request may name any endpoint (a mock, a proxy), but it must never be able to send the
    key somewhere the operator did not choose: the key would leave in the `Authorization`
    header."""
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    if not host or host not in {h.lower().rstrip(".") for h in allowed_hosts}:
        return False
    return parts.scheme in ("wss", "https") or _is_loopback_host(host)


def _is_loopback_host(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


MAX_SERVER_EVENT_BYTES = 16 * 1024 * 1024  # [limits] model_max_message_bytes


async def open_realtime(
    endpoint: str,
    model: str | None,
    api_key: str,
    *,
    timeout_s: float = 10.0,
    max_size: int = MAX_SERVER_EVENT_BYTES,
) -> ClientConnection:
    """Connect and return the open connection, or raise BackendError (one line). A server
    event over `max_size` bytes closes the connection with 1009 (message too big). `model`
    None: the URL is used as given (GPT-Live takes the model in `session.start`, and its
    endpoint has no query parameters)."""
    problem = endpoint_problem(endpoint)
    if problem is not None:  # urllib and IDNA raise on such URLs before any I/O
        raise BackendError(f"realtime endpoint {problem}", code="bad_url")
    url = realtime_url(endpoint, model) if model is not None else endpoint
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    host = endpoint_host(endpoint)
    try:
        return await connect(
            url,
            additional_headers=headers,
            # response.done and item.retrieved can be large (megabytes), but never unbounded.
            max_size=max_size,
            max_queue=16,  # server events read ahead of the session: bounded (the default)
            ping_interval=20,
            ping_timeout=20,
            open_timeout=timeout_s,
            close_timeout=2,
            compression=None,  # base64 audio does not compress; save the CPU
            user_agent_header="foreman/0.1",
            logger=_WIRE_LOG,  # the handshake trace carries the key: redacted
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        hint = {
            401: "authentication failed: check the OPENAI_API_KEY `foreman serve` runs with",
            403: "forbidden: the key has no access to this model or project",
            404: "not found: check the endpoint path and the model name",
            429: "rate limited or out of quota",
        }.get(status, "the server refused the WebSocket upgrade")
        raise BackendError(f"{host}: HTTP {status}: {hint}", code=f"http_{status}") from None
    except InvalidURI:
        raise BackendError("realtime endpoint is not a valid URL", code="bad_url") from None
    except InvalidHandshake as exc:
        raise BackendError(f"{host}: WebSocket handshake failed: {exc}", code="handshake") from None
    except ConnectionRefusedError:
        raise BackendError(f"{host}: connection refused", code="refused") from None
    except socket.gaierror:
        raise BackendError(f"{host}: host name not found", code="dns") from None
    except TimeoutError:
        raise BackendError(f"{host}: no answer within {timeout_s:g} s", code="timeout") from None
    except OSError as exc:
        raise BackendError(f"{host}: {exc.strerror or exc}", code="os_error") from None
    except websockets.exceptions.WebSocketException as exc:
        raise BackendError(f"{host}: {exc}", code="websocket") from None
