"""`ForemanClient` against the real app served on loopback (mock model, Twilio stand-in)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from client_stack import ANN, Stack, serve_stack

from foreman import __version__
from foreman.client import (
    ApiError,
    ClientError,
    Delta,
    Done,
    Event,
    ForemanClient,
    ServerUnreachable,
    StartOptions,
    ToolNotice,
    Unauthorized,
)
from foreman.testing.server import free_port
from foreman.testing.timeouts import unit


class EventLog:
    """Reads `client.events()` in a task; tests wait for a kind to arrive."""

    def __init__(self, stream: AsyncIterator[Event]) -> None:
        self.seen: list[Event] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: AsyncIterator[Event]) -> None:
        async for event in stream:
            async with self._changed:
                self.seen.append(event)
                self._changed.notify_all()

    async def wait_for(self, kind: str) -> Event:
        async with asyncio.timeout(unit(10)), self._changed:
            await self._changed.wait_for(lambda: any(e.kind == kind for e in self.seen))
        return next(e for e in self.seen if e.kind == kind)

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[ForemanClient]:
    async with ForemanClient(stack.url, token="", timeout=unit(10)) as c:
        yield c


async def test_health_names_the_server_version(client: ForemanClient) -> None:
    health = await client.health()
    assert health.status == "ok" and health.version == __version__


async def test_start_say_stop(client: ForemanClient, stack: Stack) -> None:
    st = await client.start_realtime(StartOptions(model="gpt-realtime-2.1-mini"))
    assert st.active and st.mode == "voice" and st.model == "gpt-realtime-2.1-mini"
    assert st.session_id and st.session_id.startswith("desk-")
    assert st.provider_session_id and st.provider_session_id.startswith("sess_")
    assert stack.mock.sessions[-1].model == "gpt-realtime-2.1-mini"

    pieces = [piece async for piece in client.say("hello")]
    assert all(isinstance(p, Delta) for p in pieces[:-1])
    assert "".join(p.text for p in pieces if isinstance(p, Delta)) == "Hi there, I am the mock."
    done = pieces[-1]
    assert isinstance(done, Done) and done.completed and done.error is None
    assert done.transcript == "Hi there, I am the mock."

    st = await client.realtime_status()
    assert st.active and st.counters["responses"] == 1 and st.raw["active"] is True
    st = await client.stop_realtime()
    assert not st.active and st.mode == "text"
    assert not (await client.stop_realtime()).active  # stopping twice is fine


async def test_say_without_a_session_is_a_409_in_one_line(client: ForemanClient) -> None:
    with pytest.raises(ApiError) as caught:
        async for _ in client.say("hello"):
            pass
    assert caught.value.status == 409
    assert str(caught.value).startswith("HTTP 409: no active realtime session")
    assert "\n" not in str(caught.value)


async def test_validation_errors_name_the_field(client: ForemanClient) -> None:
    with pytest.raises(ApiError) as caught:
        await client.start_realtime(StartOptions(transport="carrier-pigeon"))
    assert caught.value.status == 422 and isinstance(caught.value.detail, list)
    assert str(caught.value).startswith("HTTP 422: transport: Input should be")
    with pytest.raises(ApiError) as caught:
        await client.place_call("5550100")
    assert str(caught.value).startswith("HTTP 422: to: String should match pattern")


async def test_400_carries_the_servers_detail(client: ForemanClient) -> None:
    with pytest.raises(ApiError) as caught:
        await client.start_realtime(StartOptions(out_format="mp3"))
    assert caught.value.status == 400 and "g711_ulaw" in str(caught.value)
    assert caught.value.detail == str(caught.value).removeprefix("HTTP 400: ")


async def test_approval_answered_through_the_client(client: ForemanClient, stack: Stack) -> None:
    await client.start_realtime()
    events = EventLog(client.events(kinds=["approval."]))
    await asyncio.wait_for(stack.bus.subscribed.wait(), unit(10))
    turn = asyncio.create_task(_collect(client.say("text Ann that I am running late")))

    prompt_event = await events.wait_for("approval.prompt")
    (prompt,) = await client.approvals()
    assert prompt.id == prompt_event.data["id"] and prompt_event.seq > 0
    assert prompt.tool == "send_sms" and prompt.state == "pending"
    assert prompt.arguments == {"to": ANN, "body": "Running late"}
    assert prompt.expires_in_s > 0 and prompt.risk == "high"

    answered = await client.answer_approval(prompt.id, True, note="go ahead")
    assert answered.state == "approved" and answered.approver == "api"
    pieces = await asyncio.wait_for(turn, unit(15))
    assert isinstance(pieces[0], ToolNotice) and pieces[0].name == "send_sms"
    assert isinstance(pieces[-1], Done) and pieces[-1].completed
    assert pieces[-1].transcript.endswith("your message is on its way.")
    await events.wait_for("approval.decided")
    await events.aclose()
    # The filter is the server's: only approval events came through.
    assert {e.kind for e in events.seen} == {"approval.prompt", "approval.decided"}

    with pytest.raises(ApiError) as caught:
        await client.answer_approval(prompt.id, False)
    assert caught.value.status == 409 and "\n" not in str(caught.value)
    assert "{" not in str(caught.value)  # the message, not the JSON object
    with pytest.raises(ApiError) as caught:
        await client.answer_approval("nope", True)
    assert caught.value.status == 404 and "'nope'" in str(caught.value)

    (entry, *_) = await client.audit(limit=5)
    assert entry.tool == "send_sms" and entry.decision == "approved"
    assert entry.approval_id == prompt.id and entry.arguments["to"] == ANN
    assert await client.audit(session_id="no-such-session") == []


async def _collect(stream: AsyncIterator[object]) -> list[object]:
    return [piece async for piece in stream]


async def test_calls_listed_and_placed(client: ForemanClient, stack: Stack) -> None:
    listed = await client.calls()
    assert listed.active == () and listed.recent == ()
    placed = await client.place_call("+15551234567", purpose="dentist reminder")
    assert placed.call_sid.startswith("CA") and placed.to == "+15551234567"
    assert placed.purpose == "dentist reminder" and placed.status == "queued"
    (call,) = await stack.rest.wait_for("call", timeout=unit(5))
    assert call["sid"] == placed.call_sid and call["from"] == "+15550009999"


async def test_unfiltered_events_include_call_placed(client: ForemanClient, stack: Stack) -> None:
    events = EventLog(client.events())
    await asyncio.wait_for(stack.bus.subscribed.wait(), unit(10))
    placed = await client.place_call("+15551234567")
    event = await events.wait_for("call.placed")
    await events.aclose()
    assert event.data["call_sid"] == placed.call_sid and event.data["to"] == "+15551234567"
    assert event.seq > 0 and event.at > 0


async def test_token_required_and_checked() -> None:
    async with serve_stack(api_token="right-token") as served:
        async with ForemanClient(served.url, token="") as client:
            assert (await client.health()).status == "ok"  # health needs no token
            with pytest.raises(Unauthorized) as caught:
                await client.realtime_status()
            assert caught.value.status == 401
            assert "needs an API token: set FOREMAN_API_TOKEN" in str(caught.value)
        async with ForemanClient(served.url, token="wrong-token") as client:
            with pytest.raises(Unauthorized) as caught:
                await client.approvals()
            assert "refused the API token" in str(caught.value)
            assert "wrong-token" not in str(caught.value)
        async with ForemanClient(served.url, token="right-token") as client:
            assert (await client.approvals()) == []


async def test_url_and_token_default_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serve_stack(api_token="env-token") as served:
        monkeypatch.setenv("FOREMAN_URL", served.url + "/")
        monkeypatch.setenv("FOREMAN_API_TOKEN", "env-token")
        async with ForemanClient() as client:
            assert client.base_url == served.url
            assert not (await client.realtime_status()).active


async def test_server_down_is_one_line_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with ForemanClient(url) as client:
        with pytest.raises(ServerUnreachable) as caught:
            await client.health()
        assert str(caught.value) == f"cannot reach foreman at {url} (is `foreman serve` running?)"
        with pytest.raises(ServerUnreachable):
            async for _ in client.say("hello"):
                pass
        with pytest.raises(ServerUnreachable):
            async for _ in client.events():
                pass


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1", "127.0.0.1:8765", "http://"])
def test_a_url_that_is_not_http_is_refused_at_once(url: str) -> None:
    with pytest.raises(ClientError, match="not a foreman server URL"):
        ForemanClient(url)
