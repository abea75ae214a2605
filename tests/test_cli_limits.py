"""`foreman serve` applies `[limits]` the way the in-process test server does: a real process
on loopback, one connection too slow with its request head, one WebSocket message too big,
one client over its rate."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from foreman.testing.server import free_port
from foreman.testing.timeouts import unit

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    cfg = tmp_path / "foreman.toml"
    cfg.write_text(
        f'[server]\nport = {port}\n[storage]\ndb_path = "{tmp_path / "f.db"}"\n'
        f'[calendar]\nics_path = "{tmp_path / "cal.ics"}"\n'
        "[twilio]\nvalidate_signatures = false\n"
        "[limits]\nheader_timeout_s = 0.5\nws_max_message_bytes = 4096\n"
        "api_rate_per_s = 0.1\napi_burst = 3\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FOREMAN_"))}
    env.update(PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1", FOREMAN_CONFIG=str(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "foreman", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if re.search(r"Application startup complete", line):
                break
        else:
            raise AssertionError("foreman serve exited before serving")
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(unit(10))


async def test_foreman_serve_applies_the_limits(served: tuple[str, int]) -> None:
    host, port = served
    # A connection that never finishes its request head is answered 408 and closed.
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    await writer.drain()
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), unit(10))
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < unit(3)
    # A WebSocket message over the cap closes that socket with 1009.
    async with connect(f"ws://{host}:{port}/twilio/media") as ws:
        await ws.send("x" * 4097)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), unit(10))
        assert ws.close_code == 1009
    # The API's token bucket: three at once, then 429 with Retry-After.
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        codes = [(await http.get("/api/health")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
