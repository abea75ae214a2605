"""End to end with the mock model: the mock Realtime server (GA protocol) asks for send_sms,
the dispatcher holds it for approval (the model only gets a system note), the prompt is
approved over HTTP, the SMS reaches the Twilio REST stand-in, the function_call_output goes
back over the wire and the model speaks its follow-up. And the same with a deny."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from foreman.api import routes_approvals
from foreman.audio.formats import PCM16_24K
from foreman.backends import base as b
from foreman.backends.openai_realtime import OpenAIRealtimeBackend
from foreman.clock import ManualClock
from foreman.config import StorageConfig, TwilioConfig, settings_from_dict
from foreman.policy.context import CallContext, Channel, Role
from foreman.session.bus import EventBus
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn
from foreman.tools import ToolServices, build_tool_services

from .conftest import TOOLS_DIR

SID, TOKEN = "AC" + "2" * 32, "e2e-token"
SMS = {"to": "+15550109999", "body": "Running late"}


class BackendSession:
    """The slice of a CallSession the dispatcher uses, over a real backend."""

    def __init__(self, ctx: CallContext, backend: OpenAIRealtimeBackend) -> None:
        self.ctx = ctx
        self.backend = backend

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        await self.backend.send_tool_result(call_id, output, respond=respond)

    async def notify_model(self, text: str) -> None:
        await self.backend.add_context("system", text)

    def request_end(self, reason: str) -> None:
        raise AssertionError("not expected here")


@pytest.fixture
async def mock() -> AsyncIterator[MockRealtimeServer]:
    scenario = Scenario(
        [
            Rule(Match.user_text("text ann"), Reply.call("send_sms", SMS)),
            Rule(Match.tool("send_sms"), Reply.text("Done, per the tool result.")),
        ]
    )
    async with MockRealtimeServer(scenario) as server:
        yield server


@pytest.fixture
async def standin() -> AsyncIterator[TwilioRestStandIn]:
    async with TwilioRestStandIn(SID, TOKEN) as s:
        yield s


@pytest.fixture
async def services(tmp_path: Path, standin: TwilioRestStandIn) -> AsyncIterator[ToolServices]:
    settings = settings_from_dict({"tools": {"dir": str(TOOLS_DIR)}}).replace(
        storage=StorageConfig(db_path=str(tmp_path / "f.db")),
        twilio=TwilioConfig(
            account_sid=SID,
            auth_token=SecretStr(TOKEN),
            api_base=standin.base_url,
            from_number="+15550100000",
        ),
    )
    svc = build_tool_services(settings, EventBus(), clock=ManualClock())
    yield svc
    await svc.aclose()


async def run_turn(
    approve: bool, mock: MockRealtimeServer, services: ToolServices, standin: TwilioRestStandIn
) -> tuple[dict[str, Any], list[str]]:
    ctx = CallContext("call-e2e", Channel.PHONE, Role.CONTACT, caller_id="+15550100002")
    settings = settings_from_dict(
        {"realtime": {"endpoint": mock.url, "output_modalities": ["text"]}}
    )
    options = b.BackendOptions(
        model="gpt-realtime-2.1",
        endpoint=mock.url,
        voice="marin",
        instructions="Be brief.",
        input_format=PCM16_24K,
        output_format=PCM16_24K,
        tools=services.dispatcher.tool_definitions(ctx),
    )
    backend = OpenAIRealtimeBackend(options, settings.realtime)
    session = BackendSession(ctx, backend)
    app = FastAPI()
    app.include_router(routes_approvals.router)
    app.state.tools = services
    said: list[str] = []
    await backend.start()
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
            asyncio.timeout(unit(10)),
        ):
            await backend.add_context("user", "Please text Ann that I am running late")
            await backend.request_response()
            events = backend.events()
            async for event in events:
                if isinstance(event, b.ToolRequest):
                    await services.dispatcher.handle(event, session)
                    break
            # pending: the model got a system note, and no function_call_output yet
            note = await mock.wait_for_client_event(
                "conversation.item.create", predicate=lambda e: e["item"].get("role") == "system"
            )
            assert "NOT been done" in note["item"]["content"][0]["text"]
            outputs = [
                e
                for s in mock.sessions
                for e in s.received
                if e["type"] == "conversation.item.create"
                and e["item"]["type"] == "function_call_output"
            ]
            assert outputs == [] and standin.messages == []
            (prompt,) = (await api.get("/api/approval/prompt")).json()["prompts"]
            reply = await api.post(
                "/api/approval/answer", json={"id": prompt["id"], "approve": approve}
            )
            assert reply.status_code == 200
            sent = await mock.wait_for_client_event(
                "conversation.item.create",
                predicate=lambda e: e["item"]["type"] == "function_call_output",
            )
            async for event in events:
                if isinstance(event, b.Transcript) and event.role == "assistant" and event.final:
                    said.append(event.text)
                    break
        return json.loads(sent["item"]["output"]), said
    finally:
        await backend.close()


async def test_mock_model_sms_approved(
    mock: MockRealtimeServer, services: ToolServices, standin: TwilioRestStandIn
) -> None:
    output, said = await run_turn(True, mock, services, standin)
    (msg,) = standin.messages
    assert (msg["to"], msg["body"]) == (SMS["to"], SMS["body"])
    assert output == {"ok": True, "result": {"status": "sent", "to": SMS["to"], "sid": msg["sid"]}}
    assert said == ["Done, per the tool result."]


async def test_mock_model_sms_denied(
    mock: MockRealtimeServer, services: ToolServices, standin: TwilioRestStandIn
) -> None:
    output, said = await run_turn(False, mock, services, standin)
    assert output == {"ok": False, "error": "denied by owner; the action was NOT done"}
    assert standin.requests == [] and said  # the model answered after the denial
