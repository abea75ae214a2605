"""The connection limits `uvicorn_settings` gives every server, on real sockets: a slow
request head is cut off (slowloris), idle kept-alive connections close, a WebSocket message
over the cap closes only its own socket (1009), and connections beyond the cap get 503."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from foreman.config import LimitsConfig, Settings
from foreman.io.uvicorn_settings import uvicorn_settings
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit

HEAD = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n"


def limited(**limits: object) -> Settings:
    return Settings(limits=LimitsConfig(**limits))  # type: ignore[arg-type]


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        with contextlib.suppress(Exception):
            while True:
                await ws.send_text(await ws.receive_text())

    return app


@contextlib.asynccontextmanager
async def server(settings: Settings) -> AsyncIterator[tuple[str, int]]:
    async with serve_app(tiny_app(), settings=settings) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


async def drip(host: str, port: int, every_s: float) -> tuple[float, bytes]:
    """Send the request head one byte at a time; return when the server closed the
    connection (seconds after connecting) and what it answered. The pacing is the attack
    itself, not a wait for the server."""
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    answer = b""

    async def read_all() -> None:
        nonlocal answer
        answer = await reader.read()

    reading = asyncio.create_task(read_all())
    try:
        for byte in HEAD:
            if reading.done():
                break
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            await asyncio.wait({reading}, timeout=every_s)
        await asyncio.wait_for(reading, unit(5))
        return time.monotonic() - started, answer
    finally:
        writer.close()


async def test_a_request_head_sent_one_byte_at_a_time_is_cut_off() -> None:
    async with server(limited(header_timeout_s=0.5)) as (host, port):
        # 30 slow clients at once; each would take len(HEAD) * 0.2 s = 11 s to finish.
        results = await asyncio.gather(*(drip(host, port, 0.2) for _ in range(30)))
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            assert (await http.get("/ping")).status_code == 200  # still serving
    for took, answer in results:
        assert took < 0.5 + unit(1.5), took
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:60]


async def test_a_connection_that_sends_nothing_is_closed() -> None:
    async with server(limited(header_timeout_s=0.3)) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), unit(5))
        writer.close()
    assert time.monotonic() - started < 0.3 + unit(1.5)
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_the_deadline_is_per_request_on_a_kept_alive_connection() -> None:
    async with server(limited(header_timeout_s=0.4, keep_alive_timeout_s=5.0)) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        for _ in range(3):  # together well over the deadline; each head well under it
            writer.write(HEAD[:20])
            await writer.drain()
            await asyncio.sleep(0.15)  # a client that pauses mid-head, briefly
            writer.write(HEAD[20:])
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), unit(5))
            assert status.startswith(b"HTTP/1.1 200 "), status
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            await asyncio.sleep(0.3)
        writer.close()


async def test_an_idle_kept_alive_connection_is_closed() -> None:
    async with server(limited(keep_alive_timeout_s=0.3)) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(HEAD)
        await writer.drain()
        answered = time.monotonic()
        rest = await asyncio.wait_for(reader.read(), unit(5))  # returns at EOF
        writer.close()
    assert rest.startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - answered < 0.3 + unit(1.5)


async def test_a_websocket_message_over_the_cap_closes_only_that_socket() -> None:
    async with server(limited(ws_max_message_bytes=8192)) as (host, port):
        url = f"ws://{host}:{port}/echo"
        async with connect(url) as neighbour, connect(url, max_size=None) as big:
            await neighbour.send("before")
            assert await neighbour.recv() == "before"
            await big.send("x" * 8192)  # at the cap: fine
            assert len(await big.recv()) == 8192
            await big.send("x" * 8193)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(big.recv(), unit(5))
            assert big.close_code == 1009
            await neighbour.send("after")
            assert await neighbour.recv() == "after"


async def test_connections_beyond_the_cap_get_503() -> None:
    async with server(limited(max_connections=3)) as (host, port):
        idle = [await asyncio.open_connection(host, port) for _ in range(3)]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(HEAD)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), unit(5))
        assert status.startswith(b"HTTP/1.1 503 "), status
        for _, w in [*idle, (reader, writer)]:
            w.close()


def test_every_server_gets_the_same_protocols_and_limits() -> None:
    settings = limited(ws_max_message_bytes=4096, keep_alive_timeout_s=2.0, max_connections=7)
    kw = uvicorn_settings(settings)
    assert kw["ws"] == "websockets-sansio" and kw["ws_max_size"] == 4096
    assert kw["timeout_keep_alive"] == 2.0 and kw["limit_concurrency"] == 7
    assert kw["http"].header_timeout_s == settings.limits.header_timeout_s
