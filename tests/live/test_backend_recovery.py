"""The GPT-Live backend moves to a new session when its socket drops, when the service
closes the session at `expires_at`, when its track stalls, and before `expires_at` at a
pause (rollover). The new session is seeded with the conversation, gets the newest held
audio, and answers delegated calls of the lost one exactly once; a fatal answer or a spent
window ends the backend with the reason."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from live_stack import live_backend
from test_replies import speech_ulaw

from foreman.backends import interface as b
from foreman.backends.live_recovery import CONTINUED
from foreman.backends.openai_live import OpenAILiveBackend
from foreman.io.realtime_ws import open_realtime
from foreman.testing.mock_realtime import (
    Faults,
    Match,
    MockRealtimeServer,
    Reply,
    Rule,
    Scenario,
)
from foreman.testing.mock_realtime.live import LiveMockSession
from foreman.testing.timeouts import unit
from foreman.tools.request import ToolRequest

FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "reconnect_window_s": 5.0}
STORY = (
    "Once upon a time a lighthouse keeper counted the ships that passed his rock, one by one, "
    "every night for forty years, and wrote each name in a long blue book."
)
TOOLS = (
    {
        "type": "function",
        "name": "get_time",
        "description": "The time now.",
        "parameters": {"type": "object", "properties": {}},
    },
)
SCENARIO = Scenario(
    [
        Rule(Match(instructions="Greet"), Reply.say("Hello.")),
        Rule(Match(instructions="12:00"), Reply.say("It is noon.")),
        Rule(Match.user_text("story"), Reply.say(STORY)),
        Rule(Match.user_text("time"), Reply.call("get_time")),
        Rule(Match.user_text("weather"), Reply.say("Sunny.")),
    ]
)


async def until(
    events: AsyncIterator[b.BackendEvent],
    found: Callable[[b.BackendEvent], bool],
    seen: list[b.BackendEvent] | None = None,
    timeout: float = 15.0,  # noqa: ASYNC109 - a deadline, applied with asyncio.timeout
) -> b.BackendEvent:
    async with asyncio.timeout(unit(timeout)):
        async for event in events:
            if seen is not None:
                seen.append(event)
            if found(event):
                return event
    raise AssertionError("the events ended first")


def warning(code: str) -> Callable[[b.BackendEvent], bool]:
    return lambda e: isinstance(e, b.BackendWarning) and e.code == code


def received(session: LiveMockSession, kind: str) -> list[dict[str, Any]]:
    return [e for e in session.received if e["type"] == kind]


def appended(session: LiveMockSession, kind: str = "instructions") -> list[str]:
    return [e["content"] for e in received(session, f"session.{kind}.append")]


def said(seen: list[b.BackendEvent]) -> str:
    return "".join(
        e.text for e in seen if isinstance(e, b.TranscriptSegment) and e.role == "assistant"
    )


@contextlib.asynccontextmanager
async def running(backend: OpenAILiveBackend) -> AsyncIterator[AsyncIterator[b.BackendEvent]]:
    """The backend started, its supervisor running, its events; closed at the end."""
    await backend.start()
    async with asyncio.TaskGroup() as tg:
        await backend.run(tg)
        try:
            yield backend.events()
        finally:
            await backend.close()


async def test_a_dropped_socket_is_a_new_session_seeded_with_the_conversation() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        backend = live_backend(mock.live_url, greeting="Greet the caller.", recovery=FAST)
        async with running(backend) as events:
            seen: list[b.BackendEvent] = []
            await until(events, lambda e: isinstance(e, b.AssistantIdle), seen)
            assert said(seen) == "Hello."
            first = mock.live_sessions[0]
            first.fault("drop")  # the network drops the socket: no close frame
            lost = await until(events, warning("reconnecting"))
            assert isinstance(lost, b.BackendWarning) and "1006" in lost.message
            await until(events, warning("reconnected"))
            second = await mock.wait_for_live_session(index=1)
            start = second.received[0]["session"]
            # A new session knows nothing: the client seeds it with what was said.
            assert start["input"] == [
                {"role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]}
            ]
            assert start["instructions"].endswith(CONTINUED)
            assert appended(second) == []  # no greeting again, nothing to resume
            seen = []
            await backend.send_user_text("and the weather?")
            await until(events, lambda e: isinstance(e, b.AssistantIdle), seen)
            assert said(seen) == "Sunny."
            assert backend.status().counters["reconnects"] == 1
            assert backend.status().provider_session_id == second.id


async def test_a_reply_cut_by_the_drop_ends_incomplete_and_the_new_session_continues() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        backend = live_backend(mock.live_url, recovery=FAST)
        async with running(backend) as events:
            await backend.send_user_text("tell me a story")
            started = await until(events, lambda e: isinstance(e, b.ReplyStarted))
            assert isinstance(started, b.ReplyStarted)
            mock.live_sessions[0].fault("drop")
            seen: list[b.BackendEvent] = []
            await until(events, warning("reconnected"), seen)
            assert b.ReplyEnded(started.reply, "incomplete", "connection lost") in seen
            second = await mock.wait_for_live_session(index=1)
            (resume,) = await mock.wait_for_live(lambda: appended(second) or None)
            assert "Continue from there" in resume
            words = second.received[0]["session"]["input"]
            assert words[0]["role"] == "user" and "story" in words[0]["content"][0]["text"]
            assert words[-1]["role"] == "assistant"  # what was said of the story


async def test_a_pending_delegated_call_is_answered_once_on_the_new_session() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        backend = live_backend(mock.live_url, tools=TOOLS, recovery=FAST)
        async with running(backend) as events:
            await backend.send_user_text("what time is it?")
            request = await until(events, lambda e: isinstance(e, ToolRequest))
            assert isinstance(request, ToolRequest)
            mock.live_sessions[0].fault("drop")  # the output is still owed
            await until(events, warning("reconnected"))
            second = await mock.wait_for_live_session(index=1)
            (waiting,) = await mock.wait_for_live(lambda: appended(second) or None)
            assert "Still waiting for: get_time" in waiting
            seen: list[b.BackendEvent] = []
            await backend.submit_tool_result(request.call_id, '{"time": "12:00"}')
            await until(events, lambda e: isinstance(e, b.AssistantIdle), seen)
            assert said(seen) == "It is noon."
            notes = appended(second)
            assert len(notes) == 2 and "get_time" in notes[1] and '{"time": "12:00"}' in notes[1]
            # The new session's backend never saw the call: no output item for it there.
            assert received(second, "response.item.create") == []
            await backend.submit_tool_result(request.call_id, "{}")  # a second output: nothing
            assert len(appended(second)) == 2


async def test_the_callers_held_audio_is_cut_to_200_ms_and_lost_words_asked_again() -> None:
    gate = asyncio.Event()
    connects = 0

    async def slow_second_connect(*args: Any, **kw: Any) -> Any:
        nonlocal connects
        connects += 1
        if connects > 1:
            await gate.wait()
        return await open_realtime(*args, **kw)

    speech = speech_ulaw("Could you book a table for two at eight?")
    speech += b"\xff" * (-len(speech) % 160)  # whole 20 ms frames, as a phone sends
    async with MockRealtimeServer(SCENARIO) as mock:
        backend = live_backend(mock.live_url, recovery=FAST, connector=slow_second_connect)
        async with running(backend) as events:
            mock.live_sessions[0].fault("drop")
            await until(events, warning("reconnecting"))
            for i in range(0, len(speech), 160):  # the caller talks while the line is down
                await backend.push_audio(speech[i : i + 160])
            assert backend.status().counters["audio_dropped_ms"] >= len(speech) // 8 - 200
            gate.set()
            await until(events, warning("reconnected"))
            second = await mock.wait_for_live_session(index=1)
            (ask,) = await mock.wait_for_live(lambda: appended(second) or None)
            assert "repeat" in ask
            sent = [e["audio"] for e in received(second, "session.input_audio.append")]
            assert sum(int(a.strip("<> bytes")) for a in sent) == 1600  # 200 ms of µ-law
            assert backend.status().counters["audio_held_ms"] == 0


async def test_a_fatal_answer_stops_reconnecting_and_closes_with_the_reason() -> None:
    async with MockRealtimeServer(SCENARIO, api_key="sk-test") as mock:
        backend = live_backend(
            mock.live_url,
            recovery=FAST,
            realtime={"api_key": "sk-test", "api_key_hosts": ["127.0.0.1"]},
        )
        async with running(backend) as events:
            await mock.wait_for_live_session()
            mock.api_key = "sk-rotated"  # the key was revoked meanwhile
            mock.live_sessions[0].fault("drop")
            closed = await until(events, lambda e: isinstance(e, b.Closed))
            assert isinstance(closed, b.Closed) and closed.error is not None
            assert "reconnecting failed" in closed.error and "HTTP 401" in closed.error
            assert len(mock.live_sessions) == 1  # one attempt, refused at the upgrade


async def test_when_no_session_holds_the_window_ends_the_backend() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        backend = live_backend(mock.live_url, recovery={**FAST, "reconnect_window_s": 1.0})
        async with running(backend) as events:
            session = await mock.wait_for_live_session()
            mock.faults = Faults(drop_after_events=3)  # every new session drops at once
            session.fault("drop")
            closed = await until(events, lambda e: isinstance(e, b.Closed))
            assert isinstance(closed, b.Closed) and closed.error is not None
            assert "no new model session within 1 s" in closed.error
            assert len(mock.live_sessions) >= 2


async def test_before_expiry_a_standby_session_takes_over_at_a_pause() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        mock.faults = Faults(session_time_limit_s=3.0)
        backend = live_backend(
            mock.live_url,
            greeting="Greet the caller.",
            recovery=FAST,
            live={"rollover_margin_s": 2.0},
        )
        async with running(backend) as events:
            await until(events, lambda e: isinstance(e, b.AssistantIdle))
            first = mock.live_sessions[0]
            second = await mock.wait_for_live_session(index=1)
            closed = await mock.wait_for_live(
                lambda: next((e for e in first.sent if e["type"] == "session.closed"), None)
            )
            assert closed["reason"] == "close_requested"  # ours, before it expired
            assert second.received[0]["session"]["input"][-1]["content"][0]["text"] == "Hello."
            seen: list[b.BackendEvent] = []
            await backend.send_user_text("and the weather?")
            await until(events, lambda e: isinstance(e, b.AssistantIdle), seen)
            assert said(seen) == "Sunny."
            assert not any(isinstance(e, b.BackendWarning) for e in seen)  # unheard
            assert backend.status().counters["rollovers"] >= 1


async def test_an_expiry_without_a_pause_moves_to_the_standby_session() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        mock.faults = Faults(session_time_limit_s=3.0)
        backend = live_backend(mock.live_url, recovery=FAST, live={"rollover_margin_s": 2.0})
        async with running(backend) as events:
            await backend.send_user_text("tell me a story")  # longer than the session
            seen: list[b.BackendEvent] = []
            lost = await until(events, warning("reconnecting"), seen)
            assert isinstance(lost, b.BackendWarning) and "expired" in lost.message
            await until(events, warning("reconnected"), seen)
            first = mock.live_sessions[0]
            assert [e["reason"] for e in first.sent if e["type"] == "session.closed"] == ["expired"]
            assert len(mock.live_sessions) == 2  # the standby, not a third session
            assert any(isinstance(e, b.ReplyEnded) and e.status == "incomplete" for e in seen)
            second = mock.live_sessions[1]
            resume = await mock.wait_for_live(lambda: appended(second) or None)
            assert "Continue from there" in resume[-1]


async def test_a_stalled_track_is_reconnected_by_the_watchdog() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        mock.faults = Faults(freeze_after_events=8, faulty_connections=1)
        backend = live_backend(mock.live_url, recovery={**FAST, "stall_timeout_s": 1.0})
        async with running(backend) as events:
            lost = await until(events, warning("reconnecting"))
            assert isinstance(lost, b.BackendWarning) and "stopped answering" in lost.message
            await until(events, warning("reconnected"))
            assert mock.live_sessions[0].frozen
            assert backend.status().counters["watchdog_reconnects"] == 1
            # The new session's track flows: audio arrives again.
            audio = await until(events, lambda e: isinstance(e, b.AssistantAudio))
            assert isinstance(audio, b.AssistantAudio) and audio.audio


async def test_a_call_pending_at_a_rollover_is_answered_on_the_new_session() -> None:
    async with MockRealtimeServer(SCENARIO) as mock:
        mock.faults = Faults(session_time_limit_s=3.0)
        backend = live_backend(
            mock.live_url, tools=TOOLS, recovery=FAST, live={"rollover_margin_s": 2.0}
        )
        async with running(backend) as events:
            await backend.send_user_text("what time is it?")
            request = await until(events, lambda e: isinstance(e, ToolRequest))
            assert isinstance(request, ToolRequest)
            # The events are read meanwhile, as a session does.
            await until(events, lambda e: backend.status().counters["rollovers"] >= 1)
            first, second = mock.live_sessions[0], mock.live_sessions[1]
            closed = [e["reason"] for e in first.sent if e["type"] == "session.closed"]
            assert closed in ([], ["close_requested"]) and len(mock.live_sessions) == 2
            # Told silently that the call is still open (a swap is unheard).
            (waiting,) = appended(second, "thinking")
            assert "Still waiting for: get_time" in waiting and appended(second) == []
            seen: list[b.BackendEvent] = []
            await backend.submit_tool_result(request.call_id, '{"time": "12:00"}')
            await until(events, lambda e: isinstance(e, b.AssistantIdle), seen)
            assert said(seen) == "It is noon."
            assert [e for e in first.received if e["type"] == "response.item.create"] == [
                first.received[1]  # the typed turn, never the output
            ]
