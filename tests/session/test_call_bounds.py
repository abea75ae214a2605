"""Every queue of a call is bounded, and says so when full: tool calls running at once, a
text turn's reader that stopped reading, assistant audio waiting to be played, and one
server event from the model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from foreman.audio.formats import PCMU_8K
from foreman.backends import interface as b
from foreman.backends.factory import make_backend_factory
from foreman.config import settings_from_dict
from foreman.endpoints.text import TextEndpoint
from foreman.endpoints.twilio_playout import TwilioPlayout
from foreman.policy.context import CallContext, Channel, Role
from foreman.session.conversation import ConversationSession
from foreman.testing.fake_backend import FakeBackend
from foreman.testing.mock_realtime import MockRealtimeServer
from foreman.testing.timeouts import unit
from foreman.tools.request import ToolRequest


class Gate:
    """A tool layer whose calls wait until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.running = 0

    def deadline_s(self, request: ToolRequest) -> float:
        return 60.0

    async def handle(self, request: ToolRequest, session: Any) -> None:
        self.running += 1
        await self.open.wait()
        await session.send_tool_result(request.call_id, '{"ok": true}')

    def on_user_utterance(self, session: Any, text: str) -> None:
        return None

    def cancel_session(self, session_id: str) -> None:
        return None


def desk(backend: FakeBackend, **kw: Any) -> ConversationSession:
    ctx = CallContext("desk-1", Channel.LOCAL_VOICE, Role.OWNER, verified=True)
    return ConversationSession(ctx, backend, TextEndpoint(), **kw)


async def test_tool_calls_beyond_the_bound_are_answered_at_once() -> None:
    backend, gate = FakeBackend(), Gate()
    session = desk(backend, tools=gate, max_tool_calls=3)
    running = asyncio.create_task(session.run())
    for n in range(1, 6):
        backend.tool_call("slow", call_id=f"c{n}")
    await backend.wait_until(lambda: len(backend.tool_results) == 2 and gate.running == 3)
    refused = {cid: json.loads(out) for cid, out, _ in backend.tool_results}
    assert set(refused) == {"c4", "c5"}
    assert refused["c4"] == {
        "ok": False,
        "error": "too many tool calls at once (at most 3); try again",
    }
    gate.open.set()
    await backend.wait_until(lambda: len(backend.tool_results) == 5)
    backend.tool_call("slow", call_id="c6")  # room again
    await backend.wait_until(lambda: len(backend.tool_results) == 6)
    assert backend.tool_results[-1] == ("c6", '{"ok": true}', True)
    session.end("test over")
    await asyncio.wait_for(running, unit(5))


async def test_a_text_turn_whose_reader_stopped_reading_is_stopped() -> None:
    backend = FakeBackend()
    session = desk(backend, max_turn_backlog=16)
    running = asyncio.create_task(session.run())
    turn = session.say("tell me everything", audio=True)
    reader = aiter(turn)
    first = asyncio.create_task(anext(reader))
    await backend.wait_until(lambda: backend.user_texts)
    backend.reply("r1")
    backend.transcript("assistant", "Once", final=False, reply="r1")
    assert (await asyncio.wait_for(first, unit(5))) == {"delta": "Once"}
    for _ in range(100):  # the reader is not reading
        backend.audio("item1", b"\xff" * 160, reply="r1")
    await backend.wait_until(lambda: backend.heard)  # the reply was stopped
    pieces = [piece async for piece in reader]
    assert len(pieces) <= 17
    assert pieces[-1]["status"] == "incomplete" and "fell 16 events behind" in pieces[-1]["error"]
    assert pieces[-1]["transcript"] == "Once"
    assert backend.heard[0].segment is None  # nothing more was heard
    session.end("test over")
    await asyncio.wait_for(running, unit(5))


def test_assistant_audio_waiting_to_play_is_bounded() -> None:
    playout = TwilioPlayout(max_lead_ms=400, max_chunk_frames=5, max_queued_ms=1000)
    playout.audio("seg", b"\x7f" * 24_000)  # 3 s at once, faster than real time
    assert playout.out.queued_bytes == 8000 and playout.overflow_bytes == 16_000
    chunk = playout.next_chunk(0.0)
    assert chunk is not None and playout.chunk_sent(chunk) is not None
    playout.audio("seg", b"\x7f" * 8000)  # as much room as was sent
    assert playout.out.queued_bytes == 8000
    assert playout.overflow_bytes == 16_000 + 8000 - len(chunk.payload)
    # What was dropped was never sent, so no mark, and no heard position, can claim it.
    assert sum(1 for _ in playout.tracker.unfinished()) == 1


async def test_a_server_event_over_the_cap_closes_the_model_socket() -> None:
    async with MockRealtimeServer() as mock:
        settings = settings_from_dict(
            {"realtime": {"endpoint": mock.url}, "limits": {"model_max_message_bytes": 1 << 20}}
        )
        backend = make_backend_factory(settings)(
            b.BackendOptions(
                model="gpt-realtime-2.1",
                endpoint=mock.url,
                voice="marin",
                instructions="Be brief.",
                input_format=PCMU_8K,
                output_format=PCMU_8K,
            )
        )
        await backend.start()
        events = aiter(backend.events())
        assert isinstance(await anext(events), b.Ready)
        session = await mock.wait_for_session()
        huge = {"type": "conversation.item.added", "item": {"id": "x", "note": "a" * (2 << 20)}}
        await mock.inject(huge, session)
        async with asyncio.timeout(unit(10)):
            closed = [e async for e in events if isinstance(e, b.Closed)]
        assert closed and closed[0].error is not None and "1009" in closed[0].error
        await backend.close()
