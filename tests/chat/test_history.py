"""The history service without sockets: writers store in order and publish only stored
turns, the owner's calls share the current conversation and are seeded from it, strangers
get their own, summaries fall back to a digest, a crash's victims get one at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from foreman.bus import EventBus
from foreman.chat.history import ConversationHistory, UnknownConversation
from foreman.chat.llm import LLMError
from foreman.clock import ManualClock
from foreman.config import HistoryConfig
from foreman.policy.approvals import ApprovalBook
from foreman.policy.context import CallContext, Channel, Role
from foreman.policy.decision import ToolCall
from foreman.stores import MemoryConversationStore, Turn
from foreman.stores.records import INTERRUPTED_REASON

OWNER = CallContext(
    "desk-1", Channel.LOCAL_VOICE, Role.OWNER, caller_name="Godfather", verified=True
)
STRANGER = CallContext("call-CA9", Channel.PHONE, Role.UNKNOWN, caller_id="+15557770000")


class Summaries:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.asked: list[list[str]] = []

    async def summarize(self, turns: Sequence[Turn], *, channel: str, caller: str) -> str:
        self.asked.append([t.text for t in turns])
        if self.fail:
            raise LLMError("127.0.0.1:9: HTTP 500: boom")
        return "They talked."


def make(
    summarizer: Summaries | None = None, **config: object
) -> tuple[ConversationHistory, EventBus, MemoryConversationStore]:
    bus = EventBus()
    store = MemoryConversationStore()
    history = ConversationHistory(
        store,
        bus,
        ManualClock(),
        HistoryConfig(**config),
        summarizer=summarizer,  # type: ignore[arg-type]
    )
    return history, bus, store


async def test_a_writer_stores_in_order_and_the_bus_hears_only_stored_turns() -> None:
    history, bus, store = make(Summaries())
    sub = bus.subscribe()
    start = await history.begin_voice(OWNER)
    writer = history.writer(OWNER, start)
    writer.typed("hello")
    writer.utterance("assistant", "Hi there, how are you today?", 900, 3000)
    writer.tool_call("c1", "get_time", '{"timezone": "UTC"}')
    writer.tool_result("c1", '{"ok": true, "result": {}}')
    assert sub.get_nowait() is None  # nothing is announced before it is stored
    await writer.flush()
    turns = await store.turns(start.conversation_id)
    assert [(t.kind, t.text) for t in turns] == [
        ("typed", "hello"),
        ("speech", "Hi there"),
        ("tool_call", "get_time"),
        ("tool_result", '{"ok": true, "result": {}}'),
    ]
    assert turns[1].data == {
        "cut": True,
        "heard_ms": 900,
        "audio_ms": 3000,
        "full_text": "Hi there, how are you today?",
    }
    assert turns[2].data["arguments"] == {"timezone": "UTC"} and turns[3].data["ok"] is True
    assert [sub.get_nowait().data["seq"] for _ in turns] == [1, 2, 3, 4]  # type: ignore[union-attr]
    assert history.live_voice(start.conversation_id) == "desk-1"
    writer.ended("end_call")
    await writer.wait_done()
    summary = (await store.turns(start.conversation_id))[-1]
    assert summary.kind == "summary" and summary.text == "They talked."
    assert summary.data == {"session_id": "desk-1", "source": "model", "reason": "end_call"}
    assert history.live_voice(start.conversation_id) is None
    writer.typed("too late")  # after its end nothing more of a session is stored
    assert (await store.turns(start.conversation_id))[-1].kind == "summary"


async def test_a_failing_summary_model_leaves_a_digest() -> None:
    history, _, store = make(Summaries(fail=True))
    start = await history.begin_voice(OWNER)
    writer = history.writer(OWNER, start)
    writer.utterance("user", "book a table", None, None)
    writer.ended("hung up")
    await writer.wait_done()
    summary = (await store.turns(start.conversation_id))[-1]
    assert summary.data["source"] == "digest"
    assert summary.text.startswith("A voice session with Godfather (ended: hung up).")


async def test_the_owner_is_seeded_a_stranger_gets_a_conversation_of_their_own() -> None:
    history, _, store = make(seed_turns=2)
    current = await history.current()
    for text in ("one", "two", "three"):
        await history.append(current.id, Turn("typed", text, "chat", "chat-1", 1.0))
    owner = await history.begin_voice(OWNER)
    assert owner.conversation_id == current.id and owner.party == "owner"
    assert owner.seed == (("user", "two"), ("user", "three"))
    stranger = await history.begin_voice(STRANGER)
    assert stranger.conversation_id != current.id and stranger.seed == ()
    assert stranger.party == "caller:+15557770000"
    assert await store.get(stranger.conversation_id) is None  # made with its first turn
    writer = history.writer(STRANGER, stranger)
    writer.utterance("user", "who is this?", None, None)
    await writer.flush()
    made = await store.get(stranger.conversation_id)
    assert made is not None and made.party == "caller:+15557770000"
    assert (await history.current()).id == current.id  # the owner's stays current
    unverified = CallContext("call-X", Channel.PHONE, Role.OWNER, caller_id="+1555", verified=False)
    assert (await history.begin_voice(unverified)).conversation_id != current.id


async def test_approvals_reach_the_writer_of_their_session() -> None:
    history, _, store = make()
    start = await history.begin_voice(OWNER)
    writer = history.writer(OWNER, start)
    book = ApprovalBook()
    call = ToolCall("c1", "send_sms", {"to": "+1"}, "high")
    approval = book.open(call=call, ctx=OWNER, now=0.0, timeout_s=60)
    history.on_approval(approval)
    history.on_approval(book.answer(approval.id, True, approver="owner", note=None, now=1.0))
    await writer.flush()
    states = [
        (t.kind, t.data["state"], t.data["approver"])
        for t in await store.turns(start.conversation_id)
    ]
    assert states == [("approval", "pending", None), ("approval", "approved", "owner")]


async def test_a_chat_waits_until_an_ended_session_has_its_summary() -> None:
    gate, asked = asyncio.Event(), asyncio.Event()

    class Slow(Summaries):
        async def summarize(self, turns: Sequence[Turn], *, channel: str, caller: str) -> str:
            asked.set()
            await gate.wait()
            return "Done talking."

    history, _, store = make(Slow())
    start = await history.begin_voice(OWNER)
    writer = history.writer(OWNER, start)
    writer.typed("hi")
    writer.ended("stopped")
    waiting = asyncio.create_task(history.settled(start.conversation_id, 10))
    await asyncio.wait_for(asked.wait(), 5)  # the summary is being written ...
    assert not waiting.done()  # ... and the chat waits for it
    gate.set()
    await asyncio.wait_for(waiting, 5)
    assert (await store.turns(start.conversation_id))[-1].text == "Done talking."


async def test_unknown_conversations_and_recovery_after_a_crash() -> None:
    history, _, store = make()
    try:
        await history.resolve("conv-nope")
    except UnknownConversation as exc:
        assert "conv-nope" in str(exc)
    else:
        raise AssertionError("no error for an unknown conversation")
    current = await history.current()
    await history.append(
        current.id, Turn("spoken", "are you there?", "phone", "call-CA1", 1.0, "Godfather")
    )
    await history.append(current.id, Turn("typed", "hi", "chat", "chat-1", 2.0))
    assert await history.recover(["call-CA1", "chat-1", "call-unknown"]) == 1
    summary = (await store.turns(current.id))[-1]
    assert summary.kind == "summary" and summary.session_id == "call-CA1"
    assert summary.data["reason"] == INTERRUPTED_REASON and summary.channel == "phone"
    assert await history.recover(["call-CA1"]) == 0  # it has its summary now


async def test_a_failing_store_never_stops_a_voice_session() -> None:
    class Broken(MemoryConversationStore):
        async def latest(self, party: str) -> None:
            raise OSError("disk I/O error")

    history = ConversationHistory(Broken(), EventBus(), ManualClock(), HistoryConfig())
    assert await history.voice_start(OWNER) is None
