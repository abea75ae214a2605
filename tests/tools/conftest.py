"""Fixtures for the tool layer: a fake ToolSession that records what the model would see,
recording executors, and services built on a ManualClock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from foreman.bus import EventBus
from foreman.clock import ManualClock
from foreman.config import (
    PACKAGED_TOOLS_DIR,
    IdentityConfig,
    PolicyConfig,
    Settings,
    StorageConfig,
    ToolsConfig,
)
from foreman.policy.context import CallContext, Channel, Role
from foreman.testing.timeouts import unit
from foreman.testing.tool_jobs import ToolJobs as Jobs
from foreman.tools.executors import default_registry
from foreman.tools.executors.base import ExecutorRegistry, Invocation
from foreman.tools.services import ToolServices, build_tool_services

TOOLS_DIR = PACKAGED_TOOLS_DIR
OWNER = "+15550100001"


class FakeSession:
    """Implements ToolSession; `log` keeps everything in order so a test can check that no
    'ok' result came before the tool ran."""

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx
        self.log: list[tuple[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.respond: dict[str, bool] = {}
        self.notes: list[str] = []
        self.ended: list[str] = []
        self._changed = asyncio.Condition()

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        assert call_id not in self.results, "a second function_call_output for one call_id"
        self.results[call_id] = json.loads(output)
        self.respond[call_id] = respond
        self.log.append(("result", call_id))
        async with self._changed:
            self._changed.notify_all()

    async def notify_model(self, text: str) -> None:
        self.notes.append(text)
        self.log.append(("note", text))
        async with self._changed:
            self._changed.notify_all()

    def request_end(self, reason: str) -> None:
        self.ended.append(reason)
        self.log.append(("end", reason))

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(unit(within)), self._changed:
            await self._changed.wait_for(predicate)

    async def result(self, call_id: str, within: float = 5.0) -> dict[str, Any]:
        await self.wait_for(lambda: call_id in self.results, within)
        return self.results[call_id]


def registry_for(settings: Settings, twilio_client: Any = None) -> ExecutorRegistry:
    """The default executors, each bound to its own section of `settings`."""
    return default_registry(
        twilio=settings.twilio,
        email_config=settings.email,
        calendar_config=settings.calendar,
        twilio_client=twilio_client,
    )


class Recorder:
    """Executors that record each run (and can be made slow by an event)."""

    def __init__(self, log: list[tuple[str, Any]] | None = None) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []
        self.call_ids: list[str] = []
        self.log = log
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    def executor(self, name: str) -> Any:
        async def run(args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
            self.runs.append((name, args))
            self.call_ids.append(inv.call_id)
            if hasattr(inv.session, "log"):
                inv.session.log.append(("run", inv.call_id))
            self.started.set()
            if self.gate is not None:
                await self.gate.wait()
            return {"done": name, "args": args}

        return run

    def registry(self, settings: Settings) -> ExecutorRegistry:
        reg = registry_for(settings)
        for name in (
            "send_sms",
            "place_call",
            "send_email",
            "calendar_create",
            "calendar_list",
            "get_time",
        ):
            reg.register(name, self.executor(name))
        return reg


def make_settings(
    tmp_path: Path, rules: list[dict[str, Any]] | None = None, **sections: Any
) -> Settings:
    base = Settings(
        tools=ToolsConfig(dir=str(TOOLS_DIR), still_running_after_s=0.0),
        policy=PolicyConfig(approval_timeout_s=120.0, rules=rules or []),
        identity=IdentityConfig(owner_numbers=[OWNER], contacts={"Ann": "+15550100002"}),
        storage=StorageConfig(db_path=str(tmp_path / "foreman.db")),
    )
    return base.replace(**sections) if sections else base


def owner_ctx(
    session_id: str = "s1", *, verified: bool = True, channel: Channel = Channel.PHONE
) -> CallContext:
    return CallContext(
        session_id, channel, Role.OWNER, caller_id=OWNER, caller_name="Godfather", verified=verified
    )


def contact_ctx(session_id: str = "s1") -> CallContext:
    return CallContext(
        session_id,
        Channel.PHONE,
        Role.CONTACT,
        caller_id="+15550100002",
        caller_name="Ann",
        verified=True,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def services(
    tmp_path: Path, clock: ManualClock, recorder: Recorder
) -> AsyncIterator[ToolServices]:
    settings = make_settings(tmp_path)
    svc = build_tool_services(
        settings, EventBus(), clock=clock, executors=recorder.registry(settings)
    )
    svc.jobs = Jobs(svc)  # type: ignore[attr-defined]
    yield svc
    await svc.jobs.drain(wait_s=1)  # type: ignore[attr-defined]
    await svc.aclose()
