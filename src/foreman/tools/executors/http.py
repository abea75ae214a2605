"""The `http` executor for user-defined tools: POST the arguments as JSON to a URL.

Spec options: `url` (required), `headers` (object of strings), `max_response_bytes`
(default 16 KiB; the model does not need more). The per-tool timeout bounds the request.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from foreman.exceptions import ConfigError, ToolError
from foreman.tools.executors.base import Executor, Invocation
from foreman.tools.spec import ToolSpec

_DEFAULT_MAX = 16 * 1024


def check_http_options(spec: ToolSpec) -> None:
    url = spec.options.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{spec.source}: tool {spec.name!r}: options.url must be an http(s) URL")
    headers = spec.options.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(
            f"{spec.source}: tool {spec.name!r}: options.headers must map strings to strings"
        )


async def http_post(args: dict[str, Any], inv: Invocation) -> Any:
    opts = inv.spec.options
    limit = int(opts.get("max_response_bytes", _DEFAULT_MAX))
    try:
        async with httpx.AsyncClient(timeout=inv.spec.timeout_s) as client:
            reply = await client.post(
                opts["url"],
                json={"tool": inv.spec.name, "arguments": args, "call_id": inv.call_id},
                headers=opts.get("headers", {}),
            )
    except httpx.TimeoutException:
        raise ToolError(f"{inv.spec.name}: the service did not answer in time") from None
    except httpx.HTTPError as exc:
        raise ToolError(f"{inv.spec.name}: request failed: {type(exc).__name__}") from None
    body = reply.content[:limit].decode("utf-8", "replace")
    if reply.status_code >= 400:
        raise ToolError(f"{inv.spec.name}: the service answered {reply.status_code}: {body[:300]}")
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return {"text": body}


def resolve_http(_rest: str, spec: ToolSpec) -> Executor:
    """Registered for the bare name "http" via `check_http_options` at start-up."""
    check_http_options(spec)
    return http_post
