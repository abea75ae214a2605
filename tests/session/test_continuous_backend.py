"""The session's backend interface holds for a backend unlike Realtime: GPT-Live-like (one
continuous output track with silence between replies, barge-in handled by the model, no
responses to cancel, transcripts in pieces that are never final, input that must keep
flowing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from call_harness import CALL_SID, Call, EndCallDispatcher, FakeRest, speech_ulaw

from foreman.audio.formats import PCMU_8K
from foreman.bus import EventBus, Subscription
from foreman.clock import ManualClock
from foreman.config import (
    PACKAGED_TOOLS_DIR,
    IdentityConfig,
    Settings,
    StorageConfig,
    ToolsConfig,
)
from foreman.endpoints.text import TextEndpoint
from foreman.policy.context import CallContext, Channel, Role
from foreman.session.conversation import ConversationSession
from foreman.testing.fake_backend import ContinuousFakeBackend
from foreman.testing.timeouts import unit
from foreman.tools.executors.base import ExecutorRegistry, Invocation
from foreman.tools.services import ToolServices, build_tool_services

OWNER = "+15550100001"
SMS = {"to": "+15550109999", "body": "running late"}


async def test_a_call_hangs_up_right_after_the_goodbye_is_heard() -> None:
    backend = ContinuousFakeBackend(input_format=PCMU_8K, output_format=PCMU_8K)
    rest = FakeRest()
    call = Call(
        backend=backend,
        dispatcher=EndCallDispatcher(),
        rest=rest,
        max_lead_ms=200,
        max_chunk_ms=100,
    )
    bye = speech_ulaw("Goodbye, and have a nice day.")
    loop = asyncio.get_running_loop()
    async with call:
        earpiece = asyncio.create_task(call.tw.play_in_real_time())
        await backend.wait_until(lambda: backend.timeline_ms >= 200)  # silence flows first
        backend.say(bye, "Goodbye, and have a nice day.")
        await call.tw.wait_until(lambda: bye[:160] in call.tw.media_payload)
        backend.tool_call("end_call", call_id="c_end")  # delegated while it speaks
        asked = loop.time()
        assert await call.result() == "end_call"
        took = loop.time() - asked
        earpiece.cancel()
    bye_s = len(bye) / 8000
    # The rest of the goodbye is heard, then the call ends: not the 30 s playout limit.
    assert bye_s - 0.5 <= took < bye_s + 1.5
    assert rest.hangups == [CALL_SID]
    assert bye[: len(bye) // 160 * 160] in call.tw.media_payload
    assert backend.tool_results == [("c_end", '{"ok": true}', False)]


async def test_a_call_forwards_the_continuous_track_without_clear_or_truncate() -> None:
    backend = ContinuousFakeBackend(input_format=PCMU_8K, output_format=PCMU_8K)
    async with Call(backend=backend, max_lead_ms=200, max_chunk_ms=100) as call:
        earpiece = asyncio.create_task(call.tw.play_in_real_time())
        backend.say(speech_ulaw()[:8000], "Hello, this is Foreman.")
        call.tw.feed_media(speech_ulaw()[:1600])  # the caller talks over it
        backend.yield_now()  # ...and the model yields by itself
        await call.tw.wait_until(lambda: len(call.tw.events("media")) >= 20)
        earpiece.cancel()
    assert call.tw.clears == 0 and backend.heard == []  # the model handled the barge-in


async def test_input_keeps_flowing_when_the_endpoint_sends_none() -> None:
    backend = ContinuousFakeBackend(input_format=PCMU_8K, output_format=PCMU_8K)
    ctx = CallContext("desk-1", Channel.LOCAL_VOICE, Role.OWNER, verified=True)
    session = ConversationSession(ctx, backend, TextEndpoint())
    running = asyncio.create_task(session.run())
    await backend.wait_until(lambda: backend.input_ms >= 200)
    session.end("test over")
    await running
    assert set(b"".join(backend.pushed)) == {0xFF}  # µ-law silence, 8 bytes a millisecond
    assert session.stats.silence_filled_ms >= 200


@pytest.fixture
async def desk() -> AsyncIterator[tuple[ConversationSession, ContinuousFakeBackend]]:
    backend = ContinuousFakeBackend(input_format=PCMU_8K, output_format=PCMU_8K)
    ctx = CallContext("desk-1", Channel.LOCAL_VOICE, Role.OWNER, verified=True)
    session = ConversationSession(ctx, backend, TextEndpoint(), tools=EndCallDispatcher())
    running = asyncio.create_task(session.run())
    yield session, backend
    if not running.done():
        session.end("test over")
    await asyncio.wait_for(running, unit(5))


async def test_say_returns_when_the_reply_is_over(
    desk: tuple[ConversationSession, ContinuousFakeBackend],
) -> None:
    session, backend = desk
    turn = session.say("hello")

    async def answer() -> None:
        await backend.wait_until(lambda: backend.user_texts == ["hello"])
        backend.say(speech_ulaw("Hi there.")[:2400], "Hi there.")

    answering = asyncio.create_task(answer())
    async with asyncio.timeout(unit(5)):
        pieces = [piece async for piece in turn]
    await answering
    assert pieces[0] == {"delta": "Hi there."}
    assert pieces[-1] == {"done": True, "transcript": "Hi there.", "status": "completed"}


async def test_end_call_ends_a_desk_session_after_the_goodbye(
    desk: tuple[ConversationSession, ContinuousFakeBackend],
) -> None:
    session, backend = desk
    loop = asyncio.get_running_loop()
    bye = speech_ulaw("Goodbye.")
    backend.say(bye, "Goodbye.")
    backend.tool_call("end_call", call_id="c_end")
    asked = loop.time()
    await asyncio.wait_for(session.wait_closed(), unit(5))
    assert session.reason == "end_call"
    assert loop.time() - asked < len(bye) / 8000 + 1.0


# --- the owner's spoken yes, judged from transcript pieces that are never final ---------------
@pytest.fixture
async def tools(tmp_path: Path) -> AsyncIterator[tuple[ToolServices, list[dict[str, Any]]]]:
    sent: list[dict[str, Any]] = []

    async def send_sms(args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
        sent.append(args)
        return {"status": "sent"}

    registry = ExecutorRegistry()
    for name in ("end_call", "get_time", "place_call", "send_email", "calendar_list"):
        registry.register(name, send_sms)
    registry.register("calendar_create", send_sms)
    registry.register("send_sms", send_sms)
    settings = Settings(
        tools=ToolsConfig(dir=str(PACKAGED_TOOLS_DIR)),
        identity=IdentityConfig(owner_numbers=[OWNER]),
        storage=StorageConfig(db_path=str(tmp_path / "foreman.db")),
    )
    services = build_tool_services(settings, EventBus(), clock=ManualClock(), executors=registry)
    yield services, sent
    await services.aclose()


@pytest.mark.parametrize(("role", "approves"), [(Role.OWNER, True), (Role.CONTACT, False)])
async def test_a_spoken_yes_in_pieces_approves_only_for_the_owner(
    tools: tuple[ToolServices, list[dict[str, Any]]], role: Role, approves: bool
) -> None:
    services, sent = tools
    backend = ContinuousFakeBackend(input_format=PCMU_8K, output_format=PCMU_8K)
    ctx = CallContext(f"call-{role}", Channel.PHONE, role, caller_id=OWNER, verified=True)
    bus = EventBus()
    lines = bus.subscribe(kinds=("session.transcript",))
    session = ConversationSession(
        ctx, backend, TextEndpoint(), bus=bus, tools=services.dispatcher, utterance_gap_s=0.2
    )
    running = asyncio.create_task(session.run())
    try:
        backend.tool_call("send_sms", json.dumps(SMS), call_id="c_sms")
        await backend.wait_until(lambda: any(kind == "status" for kind, _ in backend.notes))
        (prompt,) = services.approvals.pending()
        assert services.approvals.is_voice_confirmable(prompt.id) is approves
        services.clock.advance(2)  # type: ignore[attr-defined]  # past the grace period
        backend.user_says("Yes,", " send it.")  # pieces, never a final text
        if approves:
            await backend.wait_until(lambda: backend.tool_results)
            ((call_id, output, respond),) = backend.tool_results
            assert call_id == "c_sms" and json.loads(output)["ok"] is True and respond
            assert sent == [SMS]
        else:
            line = await _next_user_line(lines)
            assert line == "Yes, send it."  # heard as one utterance...
            assert services.approvals.pending() and sent == []  # ...and it approves nothing
    finally:
        session.end("test over")
        await asyncio.wait_for(running, unit(5))


async def _next_user_line(sub: Subscription) -> str:
    async with asyncio.timeout(unit(5)):
        while True:
            event = await sub.get()
            if event.data["role"] == "user":
                return str(event.data["text"])
