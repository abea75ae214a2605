"""Built-in executors run directly (get_time, end_call), the http executor against a tiny
local server, and python / entry-point plugins."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from foreman.clock import ManualClock
from foreman.config import Settings
from foreman.exceptions import ConfigError, ToolError
from foreman.tools.executors.base import Invocation, ToolResult
from foreman.tools.spec import ToolSpec

from .conftest import TOOLS_DIR, FakeSession, contact_ctx, registry_for

PARAMS: dict[str, Any] = {"type": "object", "properties": {}}


def spec_for(name: str, executor: str | None = None, **options: Any) -> ToolSpec:
    from foreman.tools.spec import load_tool_specs

    shipped = load_tool_specs(TOOLS_DIR)
    if name in shipped and executor is None:
        base = shipped[name]
        return ToolSpec(
            base.name,
            base.description,
            base.parameters,
            base.risk,
            base.executor,
            base.timeout_s,
            {**base.options, **options},
            base.source,
        )
    return ToolSpec(name, name, PARAMS, "low", executor or name, 5.0, options, "test.json")


async def invoke(
    name: str,
    args: dict[str, Any],
    *,
    executor: str | None = None,
    session: FakeSession | None = None,
    options: dict[str, Any] | None = None,
    twilio_client: Any = None,
    **sections: Any,
) -> Any:
    settings = Settings().replace(**sections) if sections else Settings()
    spec = spec_for(name, executor, **(options or {}))
    bound = registry_for(settings, twilio_client).resolve(spec)
    inv = Invocation(
        "call_x",
        spec,
        contact_ctx(),
        session or FakeSession(contact_ctx()),
        ManualClock(wall_start=1_795_000_000.0),
        bound.config,
    )
    return await bound.run(args, inv)


async def test_get_time_uses_the_clock_and_zone() -> None:
    out = await invoke("get_time", {"timezone": "Europe/Paris"})
    assert out["iso"] == "2026-11-18T12:06:40+01:00" and out["weekday"] == "Wednesday"
    assert (await invoke("get_time", {}))["timezone"] == "UTC"
    with pytest.raises(ToolError, match="unknown time zone 'Mars/Base'"):
        await invoke("get_time", {"timezone": "Mars/Base"})


async def test_end_call_asks_the_session_to_end() -> None:
    session = FakeSession(contact_ctx())
    out = await invoke("end_call", {"reason": "caller said bye"}, session=session)
    assert isinstance(out, ToolResult) and out.respond is False
    assert session.ended == ["end_call: caller said bye"]


async def test_http_executor_posts_json(unused_tcp_port: int) -> None:
    seen: list[dict[str, Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        body = json.loads(await reader.readexactly(length))
        seen.append({"body": body, "auth": b"x-token: abc" in head.lower()})
        status = b"500 Oops" if body["arguments"].get("fail") else b"200 OK"
        payload = json.dumps({"answer": 42}).encode()
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n" + payload
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", unused_tcp_port)
    async with server:
        opts = {"url": f"http://127.0.0.1:{unused_tcp_port}/hook", "headers": {"X-Token": "abc"}}
        out = await invoke("lookup", {"q": "life"}, executor="http", options=opts)
        assert out == {"answer": 42}
        assert seen[0] == {
            "body": {"tool": "lookup", "arguments": {"q": "life"}, "call_id": "call_x"},
            "auth": True,
        }
        with pytest.raises(ToolError, match="answered 500"):
            await invoke("lookup", {"fail": True}, executor="http", options=opts)
    with pytest.raises(ToolError, match="request failed"):
        await invoke("lookup", {}, executor="http", options=opts)  # server gone


async def test_http_executor_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        spec = ToolSpec(
            "slow",
            "slow",
            PARAMS,
            "low",
            "http",
            0.2,
            {"url": f"http://127.0.0.1:{port}/"},
            "t.json",
        )
        bound = registry_for(Settings()).resolve(spec)
        inv = Invocation("c", spec, contact_ctx(), FakeSession(contact_ctx()), ManualClock())
        with pytest.raises(ToolError, match="did not answer in time"):
            await bound.run({}, inv)
        server.close()


def plugin_sync(args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
    return {"echo": args, "tool": inv.spec.name}


async def plugin_async(args: dict[str, Any], inv: Invocation) -> str:
    return "async:" + args.get("x", "")


async def test_python_plugins() -> None:
    out = await invoke("echo", {"x": "1"}, executor=f"python:{__name__}:plugin_sync")
    assert out == {"echo": {"x": "1"}, "tool": "echo"}
    assert await invoke("e2", {"x": "y"}, executor=f"python:{__name__}:plugin_async") == "async:y"
    with pytest.raises(ConfigError, match="must look like"):
        await invoke("e3", {}, executor="python:nocolon")
    with pytest.raises(ConfigError, match="is not a function"):
        await invoke("e3", {}, executor=f"python:{__name__}:PARAMS")


async def test_entry_point_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    ep = md.EntryPoint(name="echo", value=f"{__name__}:plugin_async", group="foreman.tools")

    def fake_entry_points(**kw: Any) -> Any:
        assert kw == {"group": "foreman.tools", "name": kw.get("name")}
        return md.EntryPoints([ep] if kw.get("name") == "echo" else [])

    monkeypatch.setattr(md, "entry_points", fake_entry_points)
    assert await invoke("echo", {"x": "z"}, executor="plugin:echo") == "async:z"
    with pytest.raises(ConfigError, match="no entry point 'nope'"):
        await invoke("e", {}, executor="plugin:nope")


async def test_twilio_not_configured() -> None:
    with pytest.raises(ToolError, match="Twilio is not configured"):
        await invoke("send_sms", {"to": "+15550100002", "body": "x"})
