"""The client's calls for hang-up, text chat and the wake sentinel, and the event stream's
open notice: against the real app where it has the endpoint (or answers 404 where it has
not yet), and against the documented contracts through httpx's MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from client_stack import Stack

from foreman.client import (
    ApiError,
    ConnectionFailed,
    ForemanClient,
    UnexpectedResponse,
    WakeStatus,
)
from foreman.client_chat_types import (
    ChatDelta,
    ChatDone,
    ChatStart,
    ChatToolCall,
    ChatToolStarted,
    read_chat_piece,
)
from foreman.events import ModeChanged
from foreman.testing.timeouts import unit


async def test_features_missing_on_this_server_are_404s_in_one_line_and_wake_answers(
    stack: Stack,
) -> None:
    async with ForemanClient(stack.url, token="") as client:
        with pytest.raises(ApiError) as caught:
            await client.hang_up_call("CA" + "1" * 32)
        assert caught.value.status == 404 and "no live call" in str(caught.value)
        # The wake sentinel is there (no microphone on this machine: on, but not listening).
        wake = await client.wake_status()
        assert wake.enabled and not wake.listening and wake.phrase == "hey vim"
        assert not (await client.disable_wake()).enabled
        assert (await client.enable_wake()).enabled
        # Chat exists but has no model here (no key, no base_url): a 400 naming the fix.
        with pytest.raises(ApiError) as caught:
            await client.chat("hello")
        assert caught.value.status == 400 and "OPENAI_API_KEY" in str(caught.value)
        with pytest.raises(ApiError) as caught:
            async for _ in client.chat_stream("hello"):
                pass
        assert caught.value.status == 400 and "\n" not in str(caught.value)


async def test_on_open_comes_once_the_stream_is_subscribed(stack: Stack) -> None:
    """An event published from `on_open` itself arrives: nothing published after it is
    missed, so state read then is complete."""
    opened: list[int] = []

    def on_open() -> None:
        opened.append(stack.bus.subscriber_count)
        stack.bus.publish(ModeChanged("voice"))

    async with ForemanClient(stack.url, token="") as client:
        stream = client.events(on_open=on_open)
        async with asyncio.timeout(unit(10)):
            first = await anext(stream)
        await stream.aclose()
    assert opened == [1]
    assert first.kind == "mode" and first.data == {"mode": "voice"}


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> ForemanClient:
    return ForemanClient("http://foreman.test", token="t", transport=httpx.MockTransport(handler))


async def test_chat_stream_reads_deltas_tools_and_done() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"path": request.url.path, "body": json.loads(request.content)})
        body = sse(
            ("start", {"conversation_id": "conv-1", "session_id": "chat-1"}),
            ("delta", {"text": "Hi "}),
            ("delta", {"text": "there"}),
            ("tool", {"name": "get_time", "call_id": "c1"}),
            ("usage", {"tokens": 12}),  # a kind this client does not know: skipped
            ("done", {"reply": "Hi there", "conversation_id": "conv-1"}),
            ("delta", {"text": "after the end: never read"}),
        )
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    async with mock_client(handler) as client:
        pieces = [p async for p in client.chat_stream("hello", conversation_id="conv-1")]
    assert seen == [
        {"path": "/api/chat/stream", "body": {"message": "hello", "conversation_id": "conv-1"}}
    ]
    assert [type(p) for p in pieces] == [ChatStart, ChatDelta, ChatDelta, ChatToolStarted, ChatDone]
    assert "".join(p.text for p in pieces if isinstance(p, ChatDelta)) == "Hi there"
    assert isinstance(pieces[3], ChatToolStarted) and pieces[3].name == "get_time"
    done = pieces[-1]
    assert isinstance(done, ChatDone) and done.completed
    assert done.reply == "Hi there" and done.conversation_id == "conv-1"


async def test_chat_stream_failure_and_early_end() -> None:
    bodies = [
        sse(("done", {"conversation_id": "c", "status": "failed", "error": "the model is down"})),
        sse(("delta", {"text": "Hi"})),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=bodies.pop(0), headers={"content-type": "text/event-stream"}
        )

    async with mock_client(handler) as client:
        (failed,) = [p async for p in client.chat_stream("hello")]
        assert isinstance(failed, ChatDone) and not failed.completed
        assert failed.error == "the model is down"
        with pytest.raises(ConnectionFailed, match="ended the reply before it was done"):
            async for _ in client.chat_stream("hello"):
                pass


async def test_whole_chat_reply() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"message": "hi"}
        call = {"call_id": "c1", "name": "get_time", "ok": True, "output": "09:00"}
        reply = {"conversation_id": "conv-9", "reply": "Hello!", "tool_calls": [call]}
        return httpx.Response(200, json=reply)

    async with mock_client(handler) as client:
        answer = await client.chat("hi")
    assert answer.conversation_id == "conv-9" and answer.reply == "Hello!"
    assert answer.tool_calls == (
        ChatToolCall(call_id="c1", name="get_time", ok=True, output="09:00"),
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"enabled": True, "listening": True, "detector": "pocketsphinx"},
        {"wake": {"enabled": True, "listening": True, "detector": "pocketsphinx"}},
        {"ok": True},  # no status in the answer: the client reads it
    ],
)
async def test_wake_switch_returns_the_status_however_it_is_answered(
    answer: dict[str, Any],
) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "GET":
            return httpx.Response(
                200, json={"enabled": True, "listening": True, "detector": "pocketsphinx"}
            )
        return httpx.Response(200, json=answer)

    async with mock_client(handler) as client:
        status = await client.enable_wake()
    assert isinstance(status, WakeStatus) and status.enabled and status.listening
    assert status.detector == "pocketsphinx"
    assert calls[0] == "POST /api/wake/enable"
    assert calls[1:] == ([] if "ok" not in answer else ["GET /api/wake/status"])


def test_read_chat_piece_by_event_name() -> None:
    assert read_chat_piece("delta", '{"text": "a"}') == ChatDelta(text="a")
    assert read_chat_piece("heartbeat", "{}") is None
    assert read_chat_piece("", '{"text": "a"}') is None
    with pytest.raises(UnexpectedResponse, match="chat: not JSON"):
        read_chat_piece("delta", "{nope")
    with pytest.raises(UnexpectedResponse, match="expected a JSON object"):
        read_chat_piece("delta", "[1]")
