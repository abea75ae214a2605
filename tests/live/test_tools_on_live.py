"""Tools over the API's text session on GPT-Live: the delegated call goes through the real
dispatcher and gatekeeper; an SMS waits for an approval given over HTTP (its output withheld,
the model told so with an instruction), then is sent and the result spoken; a denied one is
never sent and its output says so; each call gets one output and one continuation. An
approval left unanswered past `[policy] approval_timeout_s` gives the delegated call an error
output and a continuation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from foreman.api.app import create_app
from foreman.config import settings_from_dict
from foreman.testing.mock_realtime import Call, Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.mock_realtime.live import LiveMockSession
from foreman.testing.server import serve_app
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

ACCOUNT = "AC" + "3" * 32
TOKEN = "tw-token-live"
ANN = "+15550000111"
SCENARIO = Scenario(
    [
        Rule(Match.user_text("time"), Reply.say("One moment.").then(Call.of("get_time", {}))),
        Rule(Match.tool("get_time"), Reply.say("It is about noon.")),
        Rule(Match.user_text("text Ann"), Reply.call("send_sms", {"to": ANN, "body": "Late"})),
        Rule(Match.tool("send_sms"), Reply.say("Your message is on its way.")),
    ]
)


@dataclass
class Stack:
    api: httpx.AsyncClient
    mock: MockRealtimeServer
    rest: TwilioRestStandIn
    app: Any

    @property
    def live(self) -> LiveMockSession:
        return self.mock.live_sessions[-1]

    def outputs(self) -> list[dict[str, Any]]:
        return [
            e["item"]
            for e in self.live.received
            if e["type"] == "response.item.create" and e["item"]["type"] == "function_call_output"
        ]


@pytest_asyncio.fixture
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    approval_timeout_s = getattr(request, "param", 120.0)
    async with MockRealtimeServer(SCENARIO) as mock, TwilioRestStandIn(ACCOUNT, TOKEN) as rest:
        s = settings_from_dict(
            {
                "realtime": {"api": "live"},
                "live": {"endpoint": mock.live_url},
                "policy": {"approval_timeout_s": approval_timeout_s},
            }
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
    async with api.stream("POST", "/api/realtime/say", json={"text": text}) as resp:
        assert resp.status_code == 200
        return [json.loads(line) async for line in resp.aiter_lines() if line]


async def test_a_low_risk_tool_runs_and_the_answer_is_spoken(stack: Stack) -> None:
    lines = await say(stack.api, "what time is it?")
    assert [p["tool"] for p in lines if "tool" in p] == ["get_time"]
    assert "".join(p.get("delta", "") for p in lines).endswith("It is about noon.")
    assert lines[-1]["status"] == "completed"
    (out,) = stack.outputs()
    assert json.loads(out["output"])  # the real result, JSON
    creates = [e for e in stack.live.received if e["type"] == "response.create"]
    assert len(creates) == 2  # the typed turn, then one continuation after the output


async def test_an_sms_waits_for_approval_over_http_then_is_sent_and_spoken(stack: Stack) -> None:
    sub = stack.app.state.bus.subscribe()
    turn = asyncio.create_task(say(stack.api, "text Ann that I am late"))
    while (event := await asyncio.wait_for(sub.get(), unit(10))).kind != "approval.prompt":
        pass
    assert stack.rest.messages == [] and stack.outputs() == []  # withheld while pending
    notes = [e for e in stack.live.received if e["type"] == "session.instructions.append"]
    assert notes and "NOT" in notes[-1]["content"] and notes[-1]["delegation_id"] is None
    answer = {"id": event.data["id"], "approve": True}
    assert (await stack.api.post("/api/approval/answer", json=answer)).status_code == 200
    lines = await asyncio.wait_for(turn, unit(20))
    assert "".join(p.get("delta", "") for p in lines).endswith("Your message is on its way.")
    (sms,) = await stack.rest.wait_for("message", timeout=unit(5))
    assert sms["to"] == ANN and sms["body"] == "Late"
    (out,) = stack.outputs()
    assert sms["sid"] in out["output"]


async def test_a_denied_sms_is_never_sent_and_the_output_says_so(stack: Stack) -> None:
    sub = stack.app.state.bus.subscribe()
    turn = asyncio.create_task(say(stack.api, "text Ann that I am late"))
    while (event := await asyncio.wait_for(sub.get(), unit(10))).kind != "approval.prompt":
        pass
    answer = {"id": event.data["id"], "approve": False, "note": "not now"}
    assert (await stack.api.post("/api/approval/answer", json=answer)).status_code == 200
    await asyncio.wait_for(turn, unit(20))
    assert stack.rest.messages == []
    (out,) = stack.outputs()
    assert "denied" in out["output"].lower()


@pytest.mark.parametrize("stack", [0.5], indirect=True)
async def test_an_unanswered_sms_times_out_and_the_delegated_call_gets_an_error(
    stack: Stack,
) -> None:
    sub = stack.app.state.bus.subscribe()
    turn = asyncio.create_task(say(stack.api, "text Ann that I am late"))
    while (event := await asyncio.wait_for(sub.get(), unit(10))).kind != "approval.prompt":
        pass
    assert stack.outputs() == []  # withheld while pending
    while (decided := await asyncio.wait_for(sub.get(), unit(10))).kind != "approval.decided":
        pass
    assert decided.data["id"] == event.data["id"] and decided.data["state"] == "expired"
    lines = await asyncio.wait_for(turn, unit(20))
    assert lines[-1]["status"] == "completed"  # the turn went on after the error output
    assert stack.rest.messages == []
    # The delegated call gets one output, the timeout as an error, then one continuation.
    calls = [
        e["event"]["item"]
        for e in stack.live.sent
        if e["type"] == "response.event"
        and e["event"]["type"] == "response.output_item.done"
        and e["event"]["item"]["type"] == "function_call"
    ]
    (out,) = stack.outputs()
    assert [c["call_id"] for c in calls] == [out["call_id"]]
    assert json.loads(out["output"]) == {
        "ok": False,
        "error": "approval timed out after 0.5 s; the action was NOT done",
    }
    kinds = [e["type"] for e in stack.live.received]
    output_at = next(
        i
        for i, e in enumerate(stack.live.received)
        if e["type"] == "response.item.create" and e["item"]["type"] == "function_call_output"
    )
    assert kinds[output_at + 1 :].count("response.create") == 1
    assert (await stack.api.get("/api/approval/prompt")).json()["prompts"] == []
