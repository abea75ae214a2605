"""Tool calls are tasks of the session: whatever happens to one, the model gets exactly one
output for it, in time, and the session goes on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from call_harness import Call

from foreman.bus import EventBus
from foreman.clock import ManualClock
from foreman.config import Settings, StorageConfig, ToolsConfig
from foreman.tools.executors.base import ExecutorRegistry, Invocation
from foreman.tools.request import ToolRequest
from foreman.tools.services import ToolServices, build_tool_services
from foreman.tools.spec import ToolSpec

PARAMS: dict[str, Any] = {"type": "object", "properties": {}}


class Layer:
    """A tool layer that misbehaves on purpose (bugs in handle, not in executors)."""

    def __init__(self, deadline_s: float = 5.0) -> None:
        self.deadline = deadline_s
        self.utterances: list[str] = []

    def deadline_s(self, request: ToolRequest) -> float:
        return self.deadline

    async def handle(self, request: ToolRequest, session: Any) -> None:
        if request.name == "crash":
            raise RuntimeError("a bug in the tool layer")
        if request.name == "hang":
            await asyncio.Event().wait()
        if request.name == "twice":
            await session.send_tool_result(request.call_id, '{"ok": true, "result": 1}')
            await session.send_tool_result(request.call_id, '{"ok": true, "result": 2}')
        # "silent": returns without answering

    def on_user_utterance(self, session: Any, text: str) -> None:
        self.utterances.append(text)

    def cancel_session(self, session_id: str) -> None:
        return None


def outputs(call: Call) -> dict[str, dict[str, Any]]:
    return {cid: json.loads(out) for cid, out, _ in call.backend.tool_results}


async def test_a_crash_in_the_tool_layer_is_an_error_output_and_the_call_goes_on() -> None:
    async with Call(dispatcher=Layer()) as call:
        call.backend.tool_call("crash", call_id="c1")
        await call.backend.wait_until(lambda: call.backend.tool_results)
        assert outputs(call)["c1"] == {
            "ok": False,
            "error": "crash failed: internal error (RuntimeError)",
        }
        call.backend.tool_call("silent", call_id="c2")
        await call.backend.wait_until(lambda: len(call.backend.tool_results) == 2)
        assert outputs(call)["c2"]["error"] == "silent returned no result"
        assert call.task is not None and not call.task.done()


async def test_a_hang_is_answered_at_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    async with Call(dispatcher=Layer(deadline_s=0.2)) as call:
        asked = loop.time()
        call.backend.tool_call("hang", call_id="c1")
        await call.backend.wait_until(lambda: call.backend.tool_results)
        took = loop.time() - asked
    assert 0.2 <= took < 1.5
    assert "did not finish in time" in outputs(call)["c1"]["error"]


async def test_one_output_per_call() -> None:
    async with Call(dispatcher=Layer()) as call:
        call.backend.tool_call("twice", call_id="c1")
        await call.backend.wait_until(lambda: call.backend.tool_results)
        call.backend.tool_call("silent", call_id="c2")  # a later call, to know c1 settled
        await call.backend.wait_until(lambda: len(call.backend.tool_results) == 2)
    assert [cid for cid, _, _ in call.backend.tool_results] == ["c1", "c2"]
    assert outputs(call)["c1"]["result"] == 1


# --- through the real dispatcher: executors that raise or hang ------------------------------
@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[ToolServices]:
    async def boom(args: dict[str, Any], inv: Invocation) -> None:
        raise RuntimeError("the printer is on fire")

    async def hang(args: dict[str, Any], inv: Invocation) -> None:
        await asyncio.Event().wait()

    registry = ExecutorRegistry()
    registry.register("boom", boom)
    registry.register("hang", hang)
    specs = {
        "boom": ToolSpec("boom", "raises", PARAMS, "low", "boom", 0.2, {}),
        "hang": ToolSpec("hang", "hangs", PARAMS, "low", "hang", 0.3, {}),
    }
    settings = Settings(
        tools=ToolsConfig(still_running_after_s=0.0),
        storage=StorageConfig(db_path=str(tmp_path / "foreman.db")),
    )
    svc = build_tool_services(
        settings, EventBus(), clock=ManualClock(), executors=registry, specs=specs
    )
    yield svc
    await svc.aclose()


async def test_an_executor_that_raises_or_hangs_is_answered_within_its_timeout(
    services: ToolServices,
) -> None:
    loop = asyncio.get_running_loop()
    async with Call(dispatcher=services.dispatcher) as call:
        asked = loop.time()
        call.backend.tool_call("boom", call_id="c_boom")
        call.backend.tool_call("hang", call_id="c_hang")
        await call.backend.wait_until(lambda: len(call.backend.tool_results) == 2)
        took = loop.time() - asked
    out = outputs(call)
    assert out["c_boom"] == {
        "ok": False,
        "error": "boom failed: RuntimeError: the printer is on fire",
    }
    assert out["c_hang"] == {
        "ok": False,
        "error": "hang timed out after 0.3 s; it may not have completed",
    }
    assert 0.3 <= took < 1.5
    rows = {r["call_id"]: r["outcome"] for r in await services.audit.query(10)}
    assert rows == {"c_boom": "error: RuntimeError", "c_hang": "timeout"}


async def test_hanging_up_cancels_a_running_tool_and_still_audits_it(
    services: ToolServices,
) -> None:
    call = Call(dispatcher=services.dispatcher)
    decided = services.bus.subscribe(kinds=("tool.call",))
    async with call:
        call.backend.tool_call("hang", call_id="c_hang")
        await asyncio.wait_for(decided.get(), 5)  # allowed: the executor is running
        call.tw.feed_stop()
        assert await call.result() == "caller hung up"
    assert call.backend.tool_results == []  # nobody left to tell
    (row,) = await services.audit.query(10)
    assert (row["call_id"], row["outcome"]) == ("c_hang", "cancelled")
