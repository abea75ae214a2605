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
from foreman.backends.interface import BackendOptions
from foreman.backends.openai_realtime import OpenAIRealtimeBackend
from foreman.bus import EventBus
from foreman.clock import ManualClock
from foreman.config import StorageConfig, TwilioConfig, settings_from_dict
from foreman.endpoints.text import TextEndpoint
from foreman.policy.context import CallContext, Channel, Role
from foreman.session.conversation import ConversationSession
from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn
from foreman.tools.services import ToolServices, build_tool_services

from .conftest import TOOLS_DIR

SID, TOKEN = "AC" + "2" * 32, "e2e-token"
SMS = {"to": "+15550109999", "body": "Running late"}


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
    """A text turn through a real ConversationSession (text endpoint) and the real backend."""
    ctx = CallContext("call-e2e", Channel.PHONE, Role.CONTACT, caller_id="+15550100002")
    settings = settings_from_dict(
        {"realtime": {"endpoint": mock.url, "output_modalities": ["text"]}}
    )
    options = BackendOptions(
        model="gpt-realtime-2.1",
        endpoint=mock.url,
        voice="marin",
        instructions="Be brief.",
        input_format=PCM16_24K,
        output_format=PCM16_24K,
        tools=tuple(services.dispatcher.tool_definitions(ctx)),
    )
    backend = OpenAIRealtimeBackend(options, settings.realtime)
    await backend.start()
    session = ConversationSession(ctx, backend, TextEndpoint(), tools=services.dispatcher)
    app = FastAPI()
    app.include_router(routes_approvals.router)
    app.state.tools = services
    running = asyncio.create_task(session.run())
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
            asyncio.timeout(unit(10)),
        ):
            turn = session.say("Please text Ann that I am running late")
            pieces = [await anext(turn)]
            assert pieces[0] == {"tool": "send_sms", "call_id": pieces[0]["call_id"]}
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
            pieces += [piece async for piece in turn]
        done = pieces[-1]
        assert done["done"] is True and done["status"] == "completed"
        return json.loads(sent["item"]["output"]), [done["transcript"]]
    finally:
        session.end("test over")
        await running


async def test_mock_model_sms_approved(
    mock: MockRealtimeServer, services: ToolServices, standin: TwilioRestStandIn
) -> None:
    output, said = await run_turn(True, mock, services, standin)
    (msg,) = standin.messages
    assert (msg["to"], msg["body"]) == (SMS["to"], SMS["body"])
    assert output == {"ok": True, "result": {"status": "sent", "to": SMS["to"], "sid": msg["sid"]}}
    # the turn holds the model's word while it waited (its reply to the pending note),
    # then the answer from the tool result
    (text,) = said
    assert text.endswith("Done, per the tool result.") and text != "Done, per the tool result."


async def test_mock_model_sms_denied(
    mock: MockRealtimeServer, services: ToolServices, standin: TwilioRestStandIn
) -> None:
    output, said = await run_turn(False, mock, services, standin)
    assert output == {"ok": False, "error": "denied by owner; the action was NOT done"}
    assert standin.requests == [] and said  # the model answered after the denial
