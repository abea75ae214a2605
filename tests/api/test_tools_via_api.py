"""Tools through the whole server: the API voice session, the real tool dispatcher and
gatekeeper, approvals over HTTP, the Twilio REST stand-in, and the mock model."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.config import settings_from_dict
from foreman.testing.mock_realtime import Call, Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

ACCOUNT = "AC" + "2" * 32
TOKEN = "tw-token"
ANN = "+15550000111"

SCENARIO = Scenario(
    [
        Rule(Match.user_text("time"), Reply.call("get_time", {})),
        Rule(Match.tool("get_time"), Reply.say("It is about noon.")),
        Rule(
            Match.user_text("text Ann"), Reply.call("send_sms", {"to": ANN, "body": "Running late"})
        ),
        Rule(Match.tool("send_sms"), Reply.say("Done, your message is on its way.")),
        Rule(
            Match.user_text("bye"), Reply.say("Goodbye, talk soon!").then(Call.of("end_call", {}))
        ),
    ]
)


@dataclasses.dataclass
class Stack:
    api: httpx.AsyncClient
    mock: MockRealtimeServer
    rest: TwilioRestStandIn
    app: Any


@pytest_asyncio.fixture
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    timeout_s = getattr(request, "param", 120.0)
    async with MockRealtimeServer(SCENARIO) as mock, TwilioRestStandIn(ACCOUNT, TOKEN) as rest:
        s = settings_from_dict(
            {"realtime": {"endpoint": mock.url}, "policy": {"approval_timeout_s": timeout_s}}
        )
        s = s.replace(
            twilio=s.twilio.model_copy(
                update={
                    "account_sid": ACCOUNT,
                    "auth_token": SecretStr(TOKEN),
                    "api_base": rest.base_url,
                    "public_url": "https://voice.example.com",
                    "from_number": "+15550009999",
                }
            )
        )
        app = create_app(s)
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=unit(20)) as api:
            assert (await api.post("/api/realtime/start")).status_code == 200
            yield Stack(api, mock, rest, app)
            await api.post("/api/realtime/stop")


async def say(api: httpx.AsyncClient, text: str) -> list[dict[str, Any]]:
    lines = []
    async with api.stream("POST", "/api/realtime/say", json={"text": text}) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line:
                lines.append(json.loads(line))
    return lines


def outputs(mock: MockRealtimeServer) -> list[dict[str, Any]]:
    return [
        e["item"]
        for e in mock.sessions[-1].received
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    ]


async def test_low_risk_tool_runs_and_the_answer_streams_back(stack: Stack) -> None:
    lines = await say(stack.api, "what time is it?")
    assert {"tool": "get_time"}.items() <= lines[0].items()
    assert "".join(p.get("delta", "") for p in lines) == "It is about noon."
    (out,) = outputs(stack.mock)
    assert "time" in json.loads(out["output"]) or "iso" in out["output"].lower()


async def test_sms_waits_for_approval_then_is_sent(stack: Stack) -> None:
    sub = stack.app.state.bus.subscribe()
    turn = asyncio.create_task(say(stack.api, "text Ann that I am running late"))
    while (event := await asyncio.wait_for(sub.get(), unit(10))).kind != "approval.prompt":
        pass
    prompts = (await stack.api.get("/api/approval/prompt")).json()["prompts"]
    assert [p["tool"] for p in prompts] == ["send_sms"] and prompts[0]["id"] == event.data["id"]
    assert prompts[0]["arguments"] == {"to": ANN, "body": "Running late"}
    # While the prompt is pending nothing has been sent, and the model has no tool output.
    assert stack.rest.messages == [] and outputs(stack.mock) == []
    notes = [
        e
        for e in stack.mock.sessions[-1].received
        if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
    ]
    assert notes and "NOT" in json.dumps(notes[-1])

    r = await stack.api.post("/api/approval/answer", json={"id": prompts[0]["id"], "approve": True})
    assert r.status_code == 200
    lines = await asyncio.wait_for(turn, unit(15))
    assert "".join(p.get("delta", "") for p in lines).endswith("your message is on its way.")
    (sms,) = await stack.rest.wait_for("message", timeout=unit(5))
    assert sms["to"] == ANN and sms["body"] == "Running late"
    (out,) = outputs(stack.mock)
    assert sms["sid"] in out["output"]
    audit = (await stack.api.get("/api/audit?limit=5")).json()["records"]
    assert audit[0]["tool"] == "send_sms" and audit[0]["decision"] == "approved"


async def test_denied_sms_is_never_sent(stack: Stack) -> None:
    sub = stack.app.state.bus.subscribe()
    turn = asyncio.create_task(say(stack.api, "text Ann that I am running late"))
    while (event := await asyncio.wait_for(sub.get(), unit(10))).kind != "approval.prompt":
        pass
    r = await stack.api.post(
        "/api/approval/answer", json={"id": event.data["id"], "approve": False, "note": "not now"}
    )
    assert r.status_code == 200
    await asyncio.wait_for(turn, unit(15))
    assert stack.rest.messages == []
    (out,) = outputs(stack.mock)
    assert "denied" in out["output"].lower()


@pytest.mark.parametrize("stack", [0.5], indirect=True)
async def test_unanswered_sms_times_out_and_is_never_sent(stack: Stack) -> None:
    sub = stack.app.state.bus.subscribe()
    turn = asyncio.create_task(say(stack.api, "text Ann that I am running late"))
    while (await asyncio.wait_for(sub.get(), unit(10))).kind != "approval.decided":
        pass
    await asyncio.wait_for(turn, unit(15))
    assert stack.rest.messages == []
    (out,) = outputs(stack.mock)
    assert "timed out" in out["output"]
    assert (await stack.api.get("/api/approval/prompt")).json()["prompts"] == []
    audit = (await stack.api.get("/api/audit?limit=5")).json()["records"]
    assert audit[0]["tool"] == "send_sms" and audit[0]["decision"] == "expired"


async def test_end_call_finishes_the_goodbye_then_returns_to_text_mode(stack: Stack) -> None:
    sub = stack.app.state.bus.subscribe()
    lines = await say(stack.api, "ok bye")
    assert "".join(p.get("delta", "") for p in lines) == "Goodbye, talk soon!"
    assert lines[-1]["status"] == "completed"
    while (event := await asyncio.wait_for(sub.get(), unit(10))).kind != "mode":
        pass
    assert event.data["mode"] == "text"
    st = (await stack.api.get("/api/realtime/status")).json()
    assert st["active"] is False and st["mode"] == "text" and st["last_error"] is None
    assert stack.mock.sessions[-1].closed
