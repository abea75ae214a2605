"""The OpenAPI document (`GET /openapi.json`) as the server really answers.

Routes declare their own answers (`errors(...)` next to the code that raises them, and the
streaming response classes below for their real content types). What the middleware adds
to every route cannot be declared there, so `describe_middleware` adds it to the document
built for this server: the bearer scheme on every `/api/*` route but `/api/health` (with
401 when the server has an API token; without one a request without a token is served too),
and 403 for a `Host` or `Origin` naming another site on a loopback server. Twilio's routes
are not in the document: Twilio, not an API client, calls them.
See https://spec.openapis.org/oas/v3.1.0#security-scheme-object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

__all__ = ["BEARER", "EventStreamResponse", "NDJSONResponse", "describe_middleware", "errors"]

BEARER: Final = "bearer"
PUBLIC_PATHS: Final = frozenset({"/api/health"})
_ERROR_BODY: Final[dict[str, Any]] = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"detail": {"description": "what went wrong, in one line"}},
            "required": ["detail"],
        }
    }
}


class NDJSONResponse(StreamingResponse):
    """A stream of JSON lines (https://github.com/ndjson/ndjson-spec)."""

    media_type = "application/x-ndjson"


class EventStreamResponse(StreamingResponse):
    """Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""

    media_type = "text/event-stream"


def errors(answers: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status code it can answer with, and when."""
    return {code: {"description": why, "content": _ERROR_BODY} for code, why in answers.items()}


def describe_middleware(
    app: FastAPI, *, token: bool, loopback: bool, rate_limited: bool = False
) -> None:
    """Make `app.openapi()` also describe what the middleware does on this server: the
    bearer token check (`token`: the server has one), the Host/Origin check (`loopback`),
    the request limits (413 and 408 for a request with a body; 429 when `rate_limited`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_middleware_answers(
                build(), token=token, loopback=loopback, rate_limited=rate_limited
            )
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _add_middleware_answers(
    schema: dict[str, Any], *, token: bool, loopback: bool, rate_limited: bool
) -> None:
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <token>`, the server's [server] api_token "
        "(FOREMAN_API_TOKEN). A loopback server without a token serves requests without one.",
    }
    for path, operations in schema.get("paths", {}).items():
        protected = path.startswith("/api/") and path not in PUBLIC_PATHS
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            if protected:
                # Without a token on the server, "no credentials" ({}) is accepted too.
                operation["security"] = [{BEARER: []}] if token else [{BEARER: []}, {}]
                if token:
                    answers["401"] = {
                        "description": "missing or wrong API token (Authorization: Bearer …)",
                        "content": _ERROR_BODY,
                    }
            if loopback:
                answers["403"] = {
                    "description": "the Host or Origin header names another site (a loopback "
                    "server answers only its own names and [server] allowed_hosts)",
                    "content": _ERROR_BODY,
                }
            if "requestBody" in operation:
                answers["413"] = {
                    "description": "the body is larger than [limits] api_max_body_bytes",
                    "content": _ERROR_BODY,
                }
                answers["408"] = {
                    "description": "the body did not arrive within [limits] body_timeout_s",
                    "content": _ERROR_BODY,
                }
            if rate_limited and path.startswith("/api/"):
                answers["429"] = {
                    "description": "over [limits] api_rate_per_s for this client (see Retry-After)",
                    "content": _ERROR_BODY,
                }
