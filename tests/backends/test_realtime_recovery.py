"""The Realtime backend across a lost connection, against the mock over loopback: what a
new session is given (the conversation, a tool output made meanwhile, the held audio), in
which order, exactly once; and when it stops trying."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from foreman.audio.formats import PCMU_8K
from foreman.audio.g711 import pcm16_to_ulaw
from foreman.backends import interface as b
from foreman.backends.openai_realtime import OpenAIRealtimeBackend
from foreman.config import settings_from_dict
from foreman.exceptions import BackendError
from foreman.io.realtime_ws import open_realtime
from foreman.testing.mock_realtime import Call, Match, MockRealtimeServer, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit
from foreman.tools.request import ToolRequest

RECOVERY = {"backoff_initial_s": 0.02, "backoff_max_s": 0.1, "reconnect_window_s": 5.0}


class Gate:
    """A connector whose second and later connections wait for `open` (or fail with
    `refuse`): the test decides what happens while the backend is disconnected."""

    def __init__(self, refuse: BackendError | None = None) -> None:
        self.open = asyncio.Event()
        self.refuse = refuse
        self.attempts = 0

    async def __call__(self, *args: Any, **kw: Any) -> Any:
        self.attempts += 1
        if self.attempts > 1:
            if self.refuse is not None:
                raise self.refuse
            await self.open.wait()
        return await open_realtime(*args, **kw)


def backend(url: str, gate: Gate, **recovery: Any) -> OpenAIRealtimeBackend:
    settings = settings_from_dict(
        {"realtime": {"endpoint": url, "recovery": {**RECOVERY, **recovery}}}
    )
    options = b.BackendOptions(
        model="gpt-realtime-2.1",
        endpoint=url,
        voice="marin",
        instructions="Be brief.",
        input_format=PCMU_8K,
        output_format=PCMU_8K,
        tools=({"type": "function", "name": "calendar", "parameters": {"type": "object"}},),
    )
    return OpenAIRealtimeBackend(options, settings.realtime, connector=gate)


class Events:
    """Reads a backend's events in a task; `wait(pred)` waits on a condition, never a sleep."""

    def __init__(self, stream: AsyncIterator[b.BackendEvent]) -> None:
        self.seen: list[b.BackendEvent] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: AsyncIterator[b.BackendEvent]) -> None:
        async for event in stream:
            async with self._changed:
                self.seen.append(event)
                self._changed.notify_all()

    async def wait(self, pred: Callable[[b.BackendEvent], bool], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
        def found() -> b.BackendEvent | None:
            return next((e for e in self.seen if pred(e)), None)

        async with asyncio.timeout(unit(timeout)), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        return found()

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Wait for a condition that no event announces (polls; never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + unit(timeout)
    while not pred():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.005)


def warning(code: str) -> Callable[[b.BackendEvent], bool]:
    return lambda e: isinstance(e, b.BackendWarning) and e.code == code


@functools.cache
def speech_ulaw() -> bytes:
    return pcm16_to_ulaw(synthesize("and one more thing about tomorrow", 8000))


async def test_a_tool_output_and_audio_made_while_disconnected_reach_the_new_session() -> None:
    scenario = Scenario(
        [
            Rule(
                Match.user_text("calendar"),
                Reply.say("Let me look.").then(Call.of("calendar", {"day": "today"})),
            ),
            Rule(Match.tool("calendar"), Reply.say("You are free all day.")),
        ]
    )
    gate = Gate()
    async with MockRealtimeServer(scenario) as mock:
        be = backend(mock.url, gate, buffer_audio_s=1.0)
        await be.start()
        events = Events(be.events())
        try:
            await be.send_user_text("What is on my calendar?")
            call: ToolRequest = await events.wait(lambda e: isinstance(e, ToolRequest))
            await events.wait(lambda e: isinstance(e, b.AssistantIdle))
            mock.sessions[0].drop()
            await events.wait(warning("reconnecting"))
            assert be.status().phase == "reconnecting"
            # While disconnected: 2.5 s of the caller's speech (1 s is kept), and the tool's
            # output (twice: the second is never sent).
            audio = b"\xff" * 2000 + speech_ulaw()
            audio = audio[: len(audio) - len(audio) % 160]
            for i in range(0, len(audio), 160):
                await be.push_audio(audio[i : i + 160])
            await be.submit_tool_result(call.call_id, '{"events": []}')
            await be.submit_tool_result(call.call_id, '{"events": ["again"]}')
            counters = be.status().counters
            assert counters["audio_held_ms"] == 1000
            assert counters["audio_dropped_ms"] == len(audio) // 8 - 1000
            gate.open.set()
            await events.wait(warning("reconnected"))
            new = await mock.wait_for_session(index=1)
            await mock.wait_for_client_event("response.create", session=new)
            await events.wait(
                lambda e: (
                    isinstance(e, b.TranscriptSegment)
                    and e.final
                    and e.text == "You are free all day."
                )
            )
        finally:
            await be.close()
            await events.aclose()
    received = [e for e in new.received if e["type"] != "session.update"]
    kinds = [e["type"] for e in received]
    creates = [e["item"] for e in received if e["type"] == "conversation.item.create"]
    # The conversation first, as it was: the typed turn, what the assistant said, the call
    # and its one output; then the held audio; then the request for the answer.
    assert [c.get("role") or c["type"] for c in creates] == [
        "user", "assistant", "function_call", "function_call_output",
    ]  # fmt: skip
    assert creates[0]["content"][0]["text"] == "What is on my calendar?"
    assert creates[1]["content"][0]["text"] == "Let me look."
    assert creates[2]["call_id"] == creates[3]["call_id"] == call.call_id
    assert creates[3]["output"] == '{"events": []}'
    last_create = max(i for i, k in enumerate(kinds) if k == "conversation.item.create")
    appends = [i for i, k in enumerate(kinds) if k == "input_audio_buffer.append"]
    assert appends and appends[0] > last_create
    assert kinds.index("response.create") > appends[-1]
    held = b"".join(base64.b64decode(received[i]["audio"]) for i in appends)
    assert held[:8000] == audio[-8000:]  # the newest second, oldest first
    outputs = [
        e for s in mock.sessions for e in s.received
        if e["type"] == "conversation.item.create"
        and e["item"]["type"] == "function_call_output"
    ]  # fmt: skip
    assert len(outputs) == 1  # exactly one output for the call, on the session that needs it


async def test_a_fatal_answer_stops_retrying_at_once() -> None:
    refused = BackendError("127.0.0.1: HTTP 401: authentication failed", code="http_401")
    gate = Gate(refuse=refused)
    async with MockRealtimeServer() as mock:
        be = backend(mock.url, gate, reconnect_window_s=30.0)
        await be.start()
        events = Events(be.events())
        try:
            await events.wait(lambda e: isinstance(e, b.Ready))
            mock.sessions[0].drop()
            closed: b.Closed = await events.wait(lambda e: isinstance(e, b.Closed), timeout=5)
        finally:
            await be.close()
            await events.aclose()
    assert closed.error is not None and "reconnecting failed" in closed.error
    assert "HTTP 401" in closed.error
    assert gate.attempts == 2  # one try after the drop, no more


async def test_the_window_bounds_the_outage() -> None:
    refused = BackendError("127.0.0.1: connection refused", code="refused")
    gate = Gate(refuse=refused)
    async with MockRealtimeServer() as mock:
        be = backend(mock.url, gate, reconnect_window_s=0.5)
        await be.start()
        events = Events(be.events())
        loop = asyncio.get_running_loop()
        try:
            await events.wait(lambda e: isinstance(e, b.Ready))
            mock.sessions[0].drop()
            began = loop.time()
            closed: b.Closed = await events.wait(lambda e: isinstance(e, b.Closed), timeout=5)
            took = loop.time() - began
        finally:
            await be.close()
            await events.aclose()
    assert closed.error is not None and "no new model session within 0.5 s" in closed.error
    assert "connection refused" in closed.error
    assert gate.attempts > 3  # retried with backoff ...
    assert took < unit(2.0)  # ... and stopped when the window was spent


@pytest.mark.parametrize("reconnect", [True, False])
async def test_a_dropped_socket_without_recovery_ends_with_its_reason(reconnect: bool) -> None:
    gate = Gate()
    gate.open.set()
    async with MockRealtimeServer() as mock:
        be = backend(mock.url, gate, reconnect=reconnect)
        await be.start()
        events = Events(be.events())
        try:
            await events.wait(lambda e: isinstance(e, b.Ready))
            mock.sessions[0].drop()
            if reconnect:
                await events.wait(warning("reconnected"))
                assert not any(isinstance(e, b.Closed) for e in events.seen)
            else:
                closed = await events.wait(lambda e: isinstance(e, b.Closed))
                assert closed.error and "connection closed (1006)" in closed.error
        finally:
            await be.close()
            await events.aclose()


async def test_a_reply_cut_by_a_drop_ends_with_the_words_that_arrived() -> None:
    scenario = Scenario(
        [
            Rule(
                Match.user_text("story"),
                Reply.say("Once upon a time there was a very small robot.", pace=1.0),
            ),
            Rule(Match(instructions="line dropped"), Reply.say("As I was saying.")),
        ]
    )
    gate = Gate()
    gate.open.set()
    async with MockRealtimeServer(scenario) as mock:
        be = backend(mock.url, gate)
        await be.start()
        events = Events(be.events())
        try:
            await be.send_user_text("Tell me a story.")
            await events.wait(
                lambda e: isinstance(e, b.TranscriptSegment) and not e.final and "upon" in e.text
            )
            mock.sessions[0].drop()
            await events.wait(warning("reconnected"))
            await events.wait(
                lambda e: (
                    isinstance(e, b.TranscriptSegment) and e.final and e.text == "As I was saying."
                )
            )
        finally:
            await be.close()
            await events.aclose()
    seen = events.seen
    lost = next(i for i, e in enumerate(seen) if isinstance(e, b.BackendWarning))
    pieces = "".join(
        e.text
        for e in seen[:lost]
        if isinstance(e, b.TranscriptSegment) and e.role == "assistant" and not e.final
    )
    after = seen[lost:]
    final = next(e for e in after if isinstance(e, b.TranscriptSegment))
    assert final.final and final.text == pieces and "upon" in pieces  # what arrived, once
    ended = next(e for e in after if isinstance(e, b.ReplyEnded))
    assert (ended.status, ended.reason) == ("incomplete", "connection lost")
    assert any(isinstance(e, b.AssistantIdle) for e in after)
    # The new session is told what was heard and asked to go on from there.
    creates = [e for e in mock.sessions[1].received if e["type"] == "conversation.item.create"]
    assert creates[-1]["item"]["content"][0]["text"] == pieces
    ask = next(e for e in mock.sessions[1].received if e["type"] == "response.create")
    assert "line dropped" in ask["response"]["instructions"]


async def test_a_drop_while_a_rollover_waits_for_a_pause_uses_its_standby_session() -> None:
    long_reply = Reply.say(
        "This is a long answer that keeps the assistant busy for a while.", pace=1.0
    )
    scenario = Scenario([Rule(Match.user_text("long"), long_reply)])
    gate = Gate()
    gate.open.set()
    async with MockRealtimeServer(scenario) as mock:
        be = backend(mock.url, gate, session_limit_s=60.0, rollover_after_s=0.2)
        await be.start()
        events = Events(be.events())
        try:
            async with asyncio.TaskGroup() as tg:
                await be.run(tg)  # the supervisor: it opens the standby session
                await be.send_user_text("Say something long.")
                await events.wait(lambda e: isinstance(e, b.AssistantAudio))
                standby = await mock.wait_for_session(index=1, timeout=unit(5))
                await until(lambda: be.standby is not None)  # nothing announces it
                assert be.status().counters["rollovers"] == 0  # busy talking: no pause yet
                mock.sessions[0].drop()
                await events.wait(warning("reconnected"))
                await be.close()
        finally:
            await be.close()
            await events.aclose()
    assert len(mock.sessions) == 2  # the standby took over: no third connection
    replayed = [e for e in standby.received if e["type"] == "conversation.item.create"]
    assert replayed[0]["item"]["content"][0]["text"] == "Say something long."
    assert be.status().counters["reconnects"] == 1
