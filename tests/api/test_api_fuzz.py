"""Property-based fuzzing of the whole HTTP API from its own OpenAPI schema: whatever the
body, path or query, no request may produce a server error (5xx).

The requests name the address the app is bound to in `Host` (as every local client does):
the loopback server's DNS-rebinding check answers 403 to any other name, and a fuzz run
whose every answer is that 403 tests nothing. Only Twilio's routes (signatures) may answer
403 here."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.core import NotSet

from foreman.api.app import create_app
from foreman.backends.interface import BackendOptions
from foreman.config import settings_from_dict
from foreman.exceptions import BackendError


class RefusingBackend:
    """A backend whose endpoint always refuses: fuzzed `endpoint` values never reach a network."""

    def __init__(self, options: BackendOptions) -> None:
        self.input_format = self.output_format = options.input_format

    async def start(self) -> None:
        raise BackendError("127.0.0.1:9: connection refused", code="refused")

    async def close(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {}


_state = tempfile.mkdtemp(prefix="foreman-fuzz-")  # the app opens its audit database here
_settings = settings_from_dict(
    {
        "realtime": {"endpoint": "ws://127.0.0.1:9/v1/realtime"},
        "storage": {"db_path": f"{_state}/foreman.db"},
        "calendar": {"ics_path": f"{_state}/calendar.ics"},
        # Every case comes from one client, faster than any person: the rate limit would
        # answer most of them 429 and hide what the routes do.
        "limits": {"api_rate_per_s": 0.0},
        # The routes, not a language model: chat and voice without a key would otherwise
        # load the offline engine's model for every generated chat message.
        "local": {"use": "never"},
    }
)
app = create_app(_settings, backend_factory=RefusingBackend)  # type: ignore[arg-type]
schema = schemathesis.openapi.from_dict(app.openapi()).exclude(
    path="/api/events"  # an endless SSE stream
)


BOUND = "http://127.0.0.1:8765"  # [server] host and port: the names the app answers to
client = TestClient(app, base_url=BOUND, raise_server_exceptions=False)


def send(case: schemathesis.Case) -> Any:
    """Send a generated case through FastAPI's httpx test client. (schemathesis's own transport
    uses `requests`, which `urllib3-future` (pulled in by caldav -> niquests) breaks.)"""
    query = None if isinstance(case.query, NotSet) else case.query
    headers = {} if isinstance(case.headers, NotSet) else dict(case.headers or {})
    headers.pop("host", None)  # the bound host (a generated one would only meet the 403)
    headers.pop("Host", None)
    kwargs: dict[str, Any] = {"params": query, "headers": headers}
    if not isinstance(case.body, NotSet):
        if case.media_type == "application/x-www-form-urlencoded" and isinstance(case.body, dict):
            kwargs["data"] = case.body
        elif isinstance(case.body, bytes):
            kwargs["content"] = case.body
        else:
            kwargs["content"] = json.dumps(case.body)
            kwargs["headers"]["content-type"] = case.media_type or "application/json"
    return client.request(case.method, case.formatted_path, **kwargs)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: schemathesis.Case) -> None:
    response = send(case)
    assert response.status_code < 500 or response.status_code == 502, (
        f"{case.method} {case.formatted_path} {case.media_type} {case.body!r:.200} "
        f"-> {response.status_code}: {response.text[:300]}"
    )
    if response.status_code == 502:  # only a backend failure may answer 502, with one line
        assert "connection refused" in response.json()["detail"]
    if not case.formatted_path.startswith("/twilio/"):
        # The request reached its handler: the host check let it through.
        assert response.status_code != 403, response.text[:300]


def test_the_fuzzed_requests_reach_the_handlers() -> None:
    """The client the fuzz run uses gets real answers (not the host check's 403), and a
    request naming another host still meets the check."""
    assert client.get("/api/health").json()["status"] == "ok"
    assert client.get("/api/tools").status_code == 200
    r = client.post("/api/realtime/start", json={"model": 7})
    assert r.status_code == 422 and "model" in r.text
    assert client.get("/api/health", headers={"host": "evil.example"}).status_code == 403
