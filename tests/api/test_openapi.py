"""`GET /openapi.json` says what the server really does: the bearer scheme where the token
is checked, the real content types of the streams, every status code each route answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from foreman.api.app import create_app
from foreman.config import settings_from_dict
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

TOKEN = "an-api-token-for-tests"
# The token check, the Host/Origin check, the rate limit; 413/408 for a request with a body.
MIDDLEWARE = {"401", "403", "429"}
BODY_LIMITS = {"413", "408"}
# Every operation, and the codes its own code can answer with (besides the middleware's).
ANSWERS: dict[tuple[str, str], set[str]] = {
    ("post", "/api/realtime/start"): {"200", "400", "409", "422", "502"},
    ("post", "/api/realtime/stop"): {"200"},
    ("get", "/api/realtime/status"): {"200"},
    ("post", "/api/realtime/say"): {"200", "409", "422"},
    ("post", "/api/realtime/end-turn"): {"200", "409"},
    ("get", "/api/approval/prompt"): {"200", "503"},
    ("post", "/api/approval/answer"): {"200", "404", "409", "422", "503"},
    ("get", "/api/audit"): {"200", "422", "503"},
    ("get", "/api/events"): {"200", "422", "503"},
    ("get", "/api/calls"): {"200", "503"},
    ("post", "/api/calls"): {"201", "400", "422", "502", "503"},
    ("get", "/api/health"): {"200"},
    ("get", "/api/tools"): {"200", "503"},
    ("post", "/api/calls/{call_sid}/hangup"): {"202", "404", "422", "503"},
    ("post", "/api/chat"): {"200", "400", "404", "409", "422", "502", "503", "504"},
    ("post", "/api/chat/stream"): {"200", "400", "404", "409", "422", "503"},
    ("get", "/api/history"): {"200", "422", "503"},
    ("get", "/api/history/{conversation_id}"): {"200", "404", "422", "503"},
    ("get", "/api/wake/status"): {"200"},
    ("post", "/api/wake/enable"): {"200"},
    ("post", "/api/wake/disable"): {"200"},
    ("post", "/api/wake/feed"): {"200", "400", "409"},
}


def schema(tmp_path: Path, **server: Any) -> dict[str, Any]:
    settings = settings_from_dict(
        {
            "server": server,
            "storage": {"db_path": str(tmp_path / "foreman.db")},
            "calendar": {"ics_path": str(tmp_path / "calendar.ics")},
        }
    )
    return create_app(settings).openapi()


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m, p): op for p, ops in doc["paths"].items() for m, op in ops.items()}


def test_every_route_lists_every_answer_with_a_description(tmp_path: Path) -> None:
    ops = operations(schema(tmp_path, api_token=TOKEN))  # loopback, with a token
    assert set(ops) == set(ANSWERS)
    for key, op in ops.items():
        expected = ANSWERS[key] | (MIDDLEWARE if key[1] != "/api/health" else {"403", "429"})
        if "requestBody" in op:
            expected |= BODY_LIMITS
        assert set(op["responses"]) == expected, key
        for code, answer in op["responses"].items():
            assert answer["description"].strip(), (key, code)
            if code.startswith(("4", "5")):
                assert list(answer["content"]) == ["application/json"], (key, code)


def test_the_bearer_scheme_guards_every_api_route_but_health(tmp_path: Path) -> None:
    doc = schema(tmp_path, api_token=TOKEN)
    (name,) = doc["components"]["securitySchemes"]
    assert doc["components"]["securitySchemes"][name] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    for (_, path), op in operations(doc).items():
        if path == "/api/health":
            assert "security" not in op and "401" not in op["responses"]
        else:
            assert op["security"] == [{name: []}], path
    assert not [p for p in doc["paths"] if p.startswith("/twilio/")]  # Twilio's, not clients'


def test_without_a_token_the_scheme_is_optional_and_401_never_comes(tmp_path: Path) -> None:
    doc = schema(tmp_path)
    (name,) = doc["components"]["securitySchemes"]
    for (_, path), op in operations(doc).items():
        assert "401" not in op["responses"], path
        if path != "/api/health":
            assert op["security"] == [{name: []}, {}], path


def test_a_public_bind_has_no_host_check(tmp_path: Path) -> None:
    doc = schema(tmp_path, host="0.0.0.0", api_token=TOKEN)
    for key, op in operations(doc).items():
        assert "403" not in op["responses"], key
        assert ("401" in op["responses"]) == (key[1] != "/api/health"), key


def test_streams_declare_their_real_content_types(tmp_path: Path) -> None:
    ops = operations(schema(tmp_path))
    assert list(ops["post", "/api/realtime/say"]["responses"]["200"]["content"]) == [
        "application/x-ndjson"
    ]
    assert list(ops["get", "/api/events"]["responses"]["200"]["content"]) == ["text/event-stream"]


async def test_the_document_matches_what_the_server_answers(tmp_path: Path) -> None:
    settings = settings_from_dict(
        {
            "server": {"api_token": TOKEN},
            "storage": {"db_path": str(tmp_path / "foreman.db")},
            "calendar": {"ics_path": str(tmp_path / "calendar.ics")},
        }
    )
    app = create_app(settings)
    doc = app.openapi()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(10)) as c:
        assert (await c.get("/openapi.json")).json() == doc
        assert (await c.get("/api/calls")).status_code == 401
        assert (await c.get("/api/health")).status_code == 200
        assert (
            await c.get("/api/calls", headers={**auth, "Host": "evil.example"})
        ).status_code == 403
        async with c.stream("GET", "/api/events", headers=auth) as events:
            assert events.status_code == 200
            assert events.headers["content-type"].startswith("text/event-stream")
        r = await c.post("/api/realtime/say", json={"text": "hi"}, headers=auth)
        assert (
            r.status_code == 409 and "409" in doc["paths"]["/api/realtime/say"]["post"]["responses"]
        )
        r = await c.post("/api/calls", json={"to": "+15550001234"}, headers=auth)
        assert r.status_code == 400 and "400" in doc["paths"]["/api/calls"]["post"]["responses"]


@pytest.mark.parametrize("code", ["401", "403"])
def test_middleware_answers_have_the_error_body(tmp_path: Path, code: str) -> None:
    op = operations(schema(tmp_path, api_token=TOKEN))["get", "/api/calls"]
    body = op["responses"][code]["content"]["application/json"]["schema"]
    assert body["required"] == ["detail"]
