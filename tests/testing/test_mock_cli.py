"""`python -m foreman.testing.mock_realtime.cli` (what `foreman mock-realtime` runs)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from websockets.asyncio.client import connect

from .conftest import Client, unit

SRC = str(Path(__file__).resolve().parents[2] / "src")


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = SRC + os.pathsep + e.get("PYTHONPATH", "")
    return e


async def test_cli_serves_a_scenario_until_sigterm(tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text(
        json.dumps(
            {"rules": [{"match": {"text": "hello"}, "steps": [{"text": "Hi from the CLI."}]}]}
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "foreman.testing.mock_realtime.cli", "--port", "0",
        "--scenario", str(scenario), "--api-key", "sk-test",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), unit(20))).decode().strip()
        assert line.startswith("ws://127.0.0.1:") and line.endswith("/v1/realtime")
        async with connect(
            line + "?model=gpt-realtime-2.1",
            max_size=None,
            additional_headers={"Authorization": "Bearer sk-test"},
        ) as ws:
            c = Client(ws)
            assert (await c.recv())["type"] == "session.created"
            await c.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "output_modalities": ["text"]},
                }
            )
            await c.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "hello"}],
                    },
                }
            )
            await c.send({"type": "response.create"})
            events = await c.until("response.done")
            text = next(e for e in events if e["type"] == "response.output_text.done")["text"]
            assert text == "Hi from the CLI."
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), unit(10))
    assert code == 0


async def test_cli_rejects_a_bad_scenario_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rules]]\nsteps = []\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "foreman.testing.mock_realtime.cli", "--scenario", str(bad),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env(),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), unit(20))
    assert proc.returncode == 2 and out == b""
    assert str(bad) in err.decode() and "'steps' must be a non-empty list" in err.decode()


async def test_cli_fault_flags_reach_the_server() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "foreman.testing.mock_realtime.cli", "--port", "0",
        "--session-time-limit", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), unit(20))).decode().strip()
        async with connect(url + "?model=m") as ws:
            c = Client(ws)
            assert (await c.recv())["type"] == "session.created"
            assert (await c.recv())["error"]["code"] == "session_expired"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), unit(10)) == 0


async def test_cli_reports_a_taken_port() -> None:
    holder = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = holder.sockets[0].getsockname()[1]
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "foreman.testing.mock_realtime.cli", "--port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env(),
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), unit(20))
    finally:
        holder.close()
        await holder.wait_closed()
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()


def test_the_default_port_leaves_foreman_serves_free() -> None:
    from foreman.config import ServerConfig
    from foreman.testing.mock_realtime.cli import build_parser

    assert build_parser().parse_args([]).port == 9100 != ServerConfig().port
