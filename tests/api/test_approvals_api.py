"""Approvals over HTTP, end to end: a model's SMS request raises a prompt, the prompt is
answered through the API, the SMS reaches the Twilio REST stand-in and the session gets the
result (and the same with a deny and with a timeout). Also 404 / 409 / 422, the audit log
endpoint and the SSE event stream."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from foreman.api import routes_approvals, routes_events
from foreman.bus import EventBus
from foreman.clock import ManualClock
from foreman.config import (
    PACKAGED_TOOLS_DIR,
    IdentityConfig,
    Settings,
    StorageConfig,
    ToolsConfig,
    TwilioConfig,
)
from foreman.events import DtmfPressed, ModeChanged
from foreman.policy.context import CallContext, Channel, Role
from foreman.testing.timeouts import unit
from foreman.testing.tool_jobs import ToolJobs
from foreman.testing.twilio_rest_standin import TwilioRestStandIn
from foreman.tools.request import ToolRequest
from foreman.tools.services import ToolServices, build_tool_services

SID, TOKEN = "AC" + "1" * 32, "standin-token"
SMS = {"to": "+15550109999", "body": "Running 10 minutes late"}


class Session:
    """A ToolSession stand-in that records what the model is sent."""

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx
        self.results: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.ended: list[str] = []
        self._changed = asyncio.Condition()

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        self.results[call_id] = json.loads(output)
        async with self._changed:
            self._changed.notify_all()

    async def notify_model(self, text: str) -> None:
        self.notes.append(text)

    def request_end(self, reason: str) -> None:
        self.ended.append(reason)

    async def result(self, call_id: str) -> dict[str, Any]:
        async with asyncio.timeout(unit(5)), self._changed:
            await self._changed.wait_for(lambda: call_id in self.results)
        return self.results[call_id]


def caller() -> Session:
    return Session(
        CallContext(
            "call-1",
            Channel.PHONE,
            Role.CONTACT,
            caller_id="+15550100002",
            caller_name="Ann",
            verified=True,
        )
    )


@pytest.fixture
async def standin() -> AsyncIterator[TwilioRestStandIn]:
    async with TwilioRestStandIn(SID, TOKEN) as s:
        yield s


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def services(
    tmp_path: Path, standin: TwilioRestStandIn, clock: ManualClock
) -> AsyncIterator[ToolServices]:
    settings = Settings(
        tools=ToolsConfig(dir=str(PACKAGED_TOOLS_DIR)),
        identity=IdentityConfig(owner_numbers=["+15550100001"]),
        storage=StorageConfig(db_path=str(tmp_path / "foreman.db")),
        twilio=TwilioConfig(
            account_sid=SID,
            auth_token=SecretStr(TOKEN),
            api_base=standin.base_url,
            from_number="+15550100000",
        ),
    )
    svc = build_tool_services(settings, EventBus(), clock=clock)
    svc.jobs = ToolJobs(svc)  # type: ignore[attr-defined]
    yield svc
    await svc.jobs.drain(wait_s=1)  # type: ignore[attr-defined]
    await svc.aclose()


def make_app(services: ToolServices) -> FastAPI:
    app = FastAPI()
    app.include_router(routes_approvals.router)
    app.include_router(routes_events.router)
    app.state.tools = services
    return app


@pytest.fixture
async def client(services: ToolServices) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def ask_for_sms(
    services: ToolServices, client: httpx.AsyncClient
) -> tuple[Session, dict[str, Any]]:
    session = caller()
    await services.jobs.handle(ToolRequest("call_sms", "send_sms", json.dumps(SMS)), session)
    reply = await client.get("/api/approval/prompt")
    assert reply.status_code == 200
    (prompt,) = reply.json()["prompts"]
    return session, prompt


async def test_sms_approved_over_http_reaches_twilio(
    services: ToolServices,
    client: httpx.AsyncClient,
    standin: TwilioRestStandIn,
    clock: ManualClock,
) -> None:
    session, prompt = await ask_for_sms(services, client)
    assert prompt["tool"] == "send_sms" and prompt["arguments"] == SMS
    assert (prompt["caller"], prompt["role"], prompt["channel"]) == ("Ann", "contact", "phone")
    assert prompt["expires_at"] - prompt["created_at"] == pytest.approx(120)
    assert session.results == {} and standin.messages == []
    assert "NOT been done" in session.notes[0]
    clock.advance(3)
    reply = await client.post(
        "/api/approval/answer", json={"id": prompt["id"], "approve": True, "note": "fine"}
    )
    assert reply.status_code == 200
    assert reply.json()["approval"]["state"] == "approved"
    (msg,) = await standin.wait_for("message")
    assert (msg["to"], msg["body"], msg["from"]) == (SMS["to"], SMS["body"], "+15550100000")
    out = await session.result("call_sms")
    assert out == {"ok": True, "result": {"status": "sent", "to": SMS["to"], "sid": msg["sid"]}}
    assert (await client.get("/api/approval/prompt")).json() == {"prompts": []}
    again = await client.post("/api/approval/answer", json={"id": prompt["id"], "approve": False})
    assert again.status_code == 409 and "already approved" in again.json()["detail"]["message"]
    await services.jobs.drain(wait_s=5)
    (row,) = (await client.get("/api/audit?limit=5")).json()["records"]
    assert (row["tool"], row["decision"], row["approver"], row["outcome"], row["wait_s"]) == (
        "send_sms",
        "approved",
        "api",
        "ok",
        3.0,
    )
    assert row["arguments"] == SMS and row["caller"] == "Ann"


async def test_sms_denied_over_http(
    services: ToolServices, client: httpx.AsyncClient, standin: TwilioRestStandIn
) -> None:
    session, prompt = await ask_for_sms(services, client)
    reply = await client.post(
        "/api/approval/answer", json={"id": prompt["id"], "approve": False, "note": "no texting"}
    )
    assert reply.json()["approval"]["state"] == "denied"
    out = await session.result("call_sms")
    assert out == {"ok": False, "error": "denied by owner: no texting; the action was NOT done"}
    assert standin.messages == [] and standin.requests == []
    await services.jobs.drain(wait_s=5)
    (row,) = (await client.get("/api/audit")).json()["records"]
    assert (row["decision"], row["outcome"]) == ("denied", "not run")


async def test_sms_times_out(
    services: ToolServices,
    client: httpx.AsyncClient,
    standin: TwilioRestStandIn,
    clock: ManualClock,
) -> None:
    session, prompt = await ask_for_sms(services, client)
    clock.advance(120)
    services.approvals.expire_due()
    out = await session.result("call_sms")
    assert out == {"ok": False, "error": "approval timed out after 120 s; the action was NOT done"}
    late = await client.post("/api/approval/answer", json={"id": prompt["id"], "approve": True})
    assert late.status_code == 409 and late.json()["detail"]["approval"]["state"] == "expired"
    assert standin.requests == []


async def test_hang_up_cancels_the_prompt(
    services: ToolServices, client: httpx.AsyncClient, standin: TwilioRestStandIn
) -> None:
    session, prompt = await ask_for_sms(services, client)
    services.jobs.hang_up("call-1")
    assert (await client.get("/api/approval/prompt")).json() == {"prompts": []}
    late = await client.post("/api/approval/answer", json={"id": prompt["id"], "approve": True})
    assert late.status_code == 409 and late.json()["detail"]["approval"]["state"] == "cancelled"
    await services.jobs.drain(wait_s=5)
    assert session.results == {} and standin.requests == []


async def test_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    reply = await client.post("/api/approval/answer", json={"id": "apr_nope", "approve": True})
    assert reply.status_code == 404 and "apr_nope" in reply.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"approve": True}, "id"),
        ({"id": "x"}, "approve"),
        ({"id": "x", "approve": "yes"}, "approve"),
        ({"id": "", "approve": True}, "id"),
        ({"id": "x", "approve": True, "approver": "me"}, "approver"),
        ({"id": "x", "approve": True, "note": 5}, "note"),
    ],
)
async def test_malformed_answer_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    reply = await client.post("/api/approval/answer", json=body)
    assert reply.status_code == 422
    assert any(err["loc"][-1] == field for err in reply.json()["detail"])


async def test_not_json_is_422(client: httpx.AsyncClient) -> None:
    reply = await client.post(
        "/api/approval/answer", content=b"{id:", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422


async def test_audit_limit_validated(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/audit?limit=0")).status_code == 422
    assert (await client.get("/api/audit?limit=3")).json() == {"records": []}


async def test_no_services_is_503() -> None:
    app = FastAPI()
    app.include_router(routes_approvals.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/api/approval/prompt")).status_code == 503


async def read_events(
    lines: AsyncIterator[str], want: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(unit(5)):
        async for line in lines:
            if line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                events.append(current)
                current = {}
                if want(events):
                    return events
    raise AssertionError(f"stream ended early: {events}")


async def test_sse_streams_prompt_and_decision(services: ToolServices) -> None:
    config = uvicorn.Config(make_app(services), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    # Our own listening socket: the port is known and connections queue until uvicorn
    # accepts them, so there is nothing to poll for.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c,
            c.stream("GET", "/api/events", params={"kind": "approval."}) as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            first = await anext(lines)
            assert first == ": connected"
            session = caller()
            await services.jobs.handle(
                ToolRequest("call_sms", "send_sms", json.dumps(SMS)), session
            )
            (prompt,) = services.approvals.pending()
            services.approvals.answer(prompt.id, False, approver="api", note="no")
            events = await read_events(lines, lambda ev: len(ev) >= 2)
        assert [e["event"] for e in events] == ["approval.prompt", "approval.decided"]
        assert events[0]["data"]["data"]["tool"] == "send_sms"
        assert events[1]["data"]["data"]["state"] == "denied"
        assert all(e["event"].startswith("approval.") for e in events)  # tool.* filtered out
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, unit(5))


async def test_events_without_a_bus_is_503() -> None:
    app = FastAPI()
    app.include_router(routes_events.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/api/events")).status_code == 503


async def test_sse_format_and_drop_notice() -> None:
    bus = EventBus()
    stream = routes_events.sse_stream(bus, [], ping_s=60)
    assert await anext(stream) == b": connected\n\n"  # subscribed from here on
    bus.publish(ModeChanged("voice"))
    chunk = (await asyncio.wait_for(anext(stream), unit(5))).decode()
    head, data = chunk.split("data: ")
    assert head == "id: 1\nevent: mode\n"
    assert json.loads(data)["data"] == {"mode": "voice"}
    for i in range(300):  # a reader that stopped reading: the bus keeps the newest 256
        bus.publish(DtmfPressed("s1", str(i)))
    notice = (await asyncio.wait_for(anext(stream), unit(5))).decode()
    assert "event: events.dropped" in notice and '"count": 44' in notice
    first_kept = (await asyncio.wait_for(anext(stream), unit(5))).decode()
    assert '"digit": "44"' in first_kept
    await stream.aclose()
    assert bus.subscriber_count == 0
