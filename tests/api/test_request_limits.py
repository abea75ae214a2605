"""Body size, body deadline and rate limits, first as ASGI middleware driven by hand (no
sockets: what the app is handed and what is pulled from the server is counted exactly),
then through the real app on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from foreman.api.app import create_app
from foreman.api.limits import RequestBodyLimit, RequestRateLimit
from foreman.config import settings_from_dict
from foreman.policy.rate_limit import RateLimiter
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

CHUNK = 64 * 1024
Message = dict[str, Any]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None

    def header(self, name: bytes) -> bytes | None:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return dict(start["headers"]).get(name)


def endless_body() -> tuple[Callable[[], Awaitable[Message]], list[int]]:
    """A client that never stops sending: counts how many chunks were pulled."""
    pulled = [0]

    async def receive() -> Message:
        pulled[0] += 1
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": True}

    return receive, pulled


def body_reader() -> tuple[Starlette, list[int]]:
    """An app that reads the whole body (as FastAPI routes do); records what it was handed."""
    handed = [0]

    async def upload(request: Request) -> JSONResponse:
        async for piece in request.stream():
            handed[0] += len(piece)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/api/upload", upload, methods=["POST"])]), handed


def scope(path: str = "/api/upload", headers: list[tuple[bytes, bytes]] | None = None) -> Message:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers or [],
        "client": ("203.0.113.7", 5000),
        "server": ("127.0.0.1", 8765),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    app, handed = body_reader()
    guarded = RequestBodyLimit(app, webhook_bytes=4096, api_bytes=8192, body_timeout_s=10)
    receive, pulled = endless_body()
    out = Recorder()
    await guarded(scope(headers=[(b"content-length", b"500000000")]), receive, out)
    assert out.status == 413 and out.header(b"connection") == b"close"
    assert pulled == [0] and handed == [0]
    assert b"larger than 8192 bytes" in out.sent[1]["body"]


async def test_a_streamed_body_is_cut_at_the_limit_never_buffered_past_it() -> None:
    app, handed = body_reader()
    limit = 1024 * 1024
    guarded = RequestBodyLimit(app, webhook_bytes=4096, api_bytes=limit, body_timeout_s=10)
    receive, pulled = endless_body()
    out = Recorder()
    await guarded(scope(), receive, out)  # no Content-Length: counted as it arrives
    assert out.status == 413 and out.header(b"connection") == b"close"
    assert pulled[0] == limit // CHUNK + 1  # stopped at the first chunk past the limit
    assert handed[0] <= limit  # the app never held more than the limit
    assert [m["type"] for m in out.sent] == ["http.response.start", "http.response.body"]


async def test_twilio_paths_have_their_own_smaller_limit() -> None:
    app, _ = body_reader()
    guarded = RequestBodyLimit(app, webhook_bytes=4096, api_bytes=10**9, body_timeout_s=10)
    out = Recorder()
    await guarded(scope("/twilio/voice", [(b"content-length", b"4097")]), endless_body()[0], out)
    assert out.status == 413


async def test_a_body_that_stops_arriving_is_answered_408() -> None:
    app, _ = body_reader()
    guarded = RequestBodyLimit(app, webhook_bytes=4096, api_bytes=8192, body_timeout_s=0.2)
    stalled = asyncio.Event()
    first = True

    async def receive() -> Message:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"{", "more_body": True}
        await stalled.wait()  # the client stopped sending
        raise AssertionError("unreachable")

    out = Recorder()
    started = time.monotonic()
    await asyncio.wait_for(guarded(scope(), receive, out), unit(5))
    assert out.status == 408 and time.monotonic() - started < 0.2 + unit(1)


async def test_a_body_within_the_limit_passes_untouched_and_so_does_the_wait_for_disconnect() -> (
    None
):
    app, handed = body_reader()
    guarded = RequestBodyLimit(app, webhook_bytes=4096, api_bytes=8192, body_timeout_s=0.05)
    messages = [
        {"type": "http.request", "body": b"a" * 4000, "more_body": True},
        {"type": "http.request", "body": b"b" * 4192, "more_body": False},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    out = Recorder()
    await guarded(scope(), receive, out)
    assert out.status == 200 and handed == [8192]


async def test_rate_limit_answers_429_with_retry_after_per_client_and_path_family() -> None:
    now = [0.0]
    calls: list[str] = []

    async def app(s: Message, receive: Any, send: Any) -> None:
        calls.append(s["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = RequestRateLimit(
        app,
        webhook=RateLimiter(1.0, 2),
        api=RateLimiter(0.5, 3),
        now=lambda: now[0],
    )

    async def hit(path: str, client: str = "203.0.113.7") -> Recorder:
        out = Recorder()
        s = scope(path)
        s["client"] = (client, 1)
        await limited(s, endless_body()[0], out)
        return out

    assert [(await hit("/api/x")).status for _ in range(4)] == [204, 204, 204, 429]
    refused = await hit("/api/x")
    assert refused.header(b"retry-after") == b"2"  # 0.5 tokens a second: 2 s to the next
    assert (await hit("/twilio/voice")).status == 204  # its own bucket
    assert (await hit("/api/x", client="198.51.100.1")).status == 204  # another client
    assert [(await hit("/docs")).status for _ in range(10)] == [204] * 10  # not limited
    now[0] = 2.0
    assert (await hit("/api/x")).status == 204  # waited as told
    assert calls.count("/api/x") == 5


# --- the real app on loopback ----------------------------------------------------------------
def app_with(tmp_path: Any, **limits: Any) -> Any:
    """A server whose phone line is configured (else the webhook answers 503 before it
    reads anything)."""
    return create_app(
        settings_from_dict(
            {
                "storage": {"db_path": str(tmp_path / "f.db")},
                "limits": limits,
                "twilio": {"auth_token": "t0ken", "public_url": "https://voice.example.com"},
            },
        )
    )


async def raw_request(base: str, head: bytes, body: bytes = b"") -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), unit(10))
    finally:
        writer.close()


async def test_a_500_mb_webhook_is_refused_before_its_body_is_read(tmp_path: Any) -> None:
    app = app_with(tmp_path)
    async with serve_app(app) as base:
        head = (
            b"POST /twilio/voice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 500000000\r\n\r\n"
        )
        answer = await raw_request(base, head, b"CallSid=CA")  # and then nothing more
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
        assert b"larger than 65536 bytes" in answer


async def test_a_chunked_api_body_over_the_limit_is_cut_off(tmp_path: Any) -> None:
    app = app_with(tmp_path, api_max_body_bytes=64 * 1024)
    async with serve_app(app) as base:
        head = (
            b"POST /api/realtime/start HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (16 * 1024, b" " * 16 * 1024)
        # One byte past the limit, and the body never ends. (Not more: bytes the server
        # never reads would turn its close into a reset that can swallow the answer.)
        answer = await raw_request(base, head, chunk * 4 + b"1\r\n \r\n")
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/api/health")).status_code == 200


@pytest.mark.parametrize("limits", [{}, {"webhook_max_body_bytes": 1024 * 1024}])
async def test_150000_repeated_form_fields_are_refused_at_once(
    tmp_path: Any, limits: dict[str, int]
) -> None:
    app = app_with(tmp_path, **limits)
    body = b"&".join([b"a"] * 150_000)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=unit(10)) as c:
        started = time.monotonic()
        r = await c.post(
            "/twilio/voice",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        took = time.monotonic() - started
    assert r.status_code == 413, r.text
    assert ("fields" if limits else "bytes") in r.text
    assert took < unit(2)


async def test_the_api_answers_429_with_retry_after_past_its_burst(tmp_path: Any) -> None:
    app = app_with(tmp_path, api_rate_per_s=0.5, api_burst=5)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        codes = [(await http.get("/api/health")).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        refused = await http.get("/api/health")
        assert refused.headers["retry-after"] == "2"
        assert "retry in 2 s" in refused.json()["detail"]
