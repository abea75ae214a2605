"""Phone calls in the history: a barge-in stores the assistant's turn cut where the caller
stopped hearing it; the owner's call continues (and is seeded from) the owner's
conversation, anyone else's call gets its own; every call ends with a summary."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
from phone_stack import Stack, phone_stack

from foreman.chat.context import heard_text
from foreman.config import IdentityConfig
from foreman.testing.mock_realtime import Call, Match, Reply, Rule, Scenario
from foreman.testing.speech import synthesize
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e

OWNER = "+15550000100"
GREETING = "Hi, Foreman here."
LONG_ANSWER = (
    "Tomorrow will be sunny in the morning with a light breeze from the west, "
    "clouds in the afternoon, and a chance of rain in the evening after six."
)


def sent_audio(stack: Stack, item_id: str) -> bytes:
    s = stack.mock.sessions[0]
    return b"".join(
        base64.b64decode(e["delta"])
        for e in s.sent
        if e["type"] == "response.output_audio.delta" and e["item_id"] == item_id
    )


async def bus_event(stack: Stack, kind: str, pred: Any = lambda d: True) -> dict[str, Any]:
    async with asyncio.timeout(unit(20)):
        while True:
            ev = await stack.events.get()
            if ev.kind == kind and pred(ev.data):
                return ev.data


async def history(stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.base) as http:
        r = await http.get(f"/api/history/{conversation_id}")
    assert r.status_code == 200, r.text
    return list(r.json()["turns"])


async def test_a_barge_in_stores_the_answer_cut_where_the_caller_stopped_hearing(
    tmp_path: Any,
) -> None:
    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say(GREETING)),
            Rule(Match.audio(1), Reply.say(LONG_ANSWER, pace=1.0, chunk_ms=100)),
            Rule(Match.audio(2), Reply.say("Goodbye!").then(Call.of("end_call", {}))),
        ]
    )
    rt = {"turn_detection": {"interrupt_response": False, "silence_duration_ms": 800}}
    ident = IdentityConfig(owner_numbers=[OWNER])
    async with phone_stack(
        scenario, realtime=rt, identity=ident, tools_db=str(tmp_path / "f.db")
    ) as stack:
        caller = stack.caller(from_=OWNER, continuous_silence=True)
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            greeted = await bus_event(stack, "history.turn", lambda d: d["turn"] == "speech")
            assert greeted["text"] == GREETING and greeted["channel"] == "phone"
            greeting = len(
                b"".join(
                    base64.b64decode(e["delta"])
                    for e in stack.mock.sessions[0].sent
                    if e["type"] == "response.output_audio.delta"
                )
            )
            await caller.wait_played_ms(greeting // 8, timeout=unit(15))
            await caller.play_speech(synthesize("Weather tomorrow?", 8000))
            answer_id = (
                await stack.mock.wait_for_server_event(
                    "response.output_item.added", count=2, timeout=unit(10)
                )
            )["item"]["id"]
            await caller.wait_played_ms(greeting // 8 + 1500, timeout=unit(15))
            await caller.play_speech(synthesize("Stop please.", 8000))
            truncate = await stack.mock.wait_for_client_event(
                "conversation.item.truncate", timeout=unit(10)
            )
            assert truncate["item_id"] == answer_id
            said = await bus_event(stack, "session.transcript", lambda d: d["heard_ms"] is not None)
            stored = await bus_event(
                stack, "history.turn", lambda d: d["turn"] == "speech" and d["seq"] > greeted["seq"]
            )
            await stack.rest.wait_for("hangup", timeout=unit(20))
            await caller.wait_closed(timeout=unit(5))
        summary = await bus_event(stack, "history.turn", lambda d: d["turn"] == "summary")

    conversation = stored["conversation_id"]
    assert summary["conversation_id"] == conversation == greeted["conversation_id"]
    turns = await _turns_after(stack, conversation)
    cut = next(t for t in turns if t["seq"] == stored["seq"])
    heard_ms = truncate["audio_end_ms"]
    full = said["text"]  # what the model produced before it was cancelled
    assert cut["data"]["cut"] is True and cut["data"]["heard_ms"] == heard_ms == said["heard_ms"]
    assert cut["data"]["full_text"] == full and LONG_ANSWER.startswith(full)
    # Its audio as the caller's line received it: every byte the model sent for the item.
    assert cut["data"]["audio_ms"] == len(sent_audio(stack, answer_id)) // 8
    assert cut["text"] == heard_text(full, heard_ms, cut["data"]["audio_ms"])
    assert full.startswith(cut["text"]) and len(cut["text"]) < len(full)
    assert cut["text"], "the caller heard well into the answer"
    assert cut["caller"] == "Godfather" and cut["session_id"] == f"call-{caller.call_sid}"
    # The next turns and the summary say the answer was interrupted.
    assert "(interrupted)" in summary["text"] and summary["text"].startswith("A phone call")


async def _turns_after(stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    """The stored turns, read from the same file after the server shut down."""
    from foreman.stores import SqliteConversationStore

    store = await SqliteConversationStore.open(stack.settings.storage.db_path)
    try:
        return [t.to_dict() for t in await store.turns(conversation_id)]
    finally:
        await store.aclose()


async def test_the_owner_continues_the_conversation_a_stranger_starts_one(tmp_path: Any) -> None:
    scenario = Scenario([Rule(Match(instructions="Greet"), Reply.say("Hello."))])
    ident = IdentityConfig(owner_numbers=[OWNER])
    async with phone_stack(scenario, identity=ident, tools_db=str(tmp_path / "f.db")) as stack:
        owner = stack.caller(from_=OWNER)
        async with owner:
            await owner.dial()
            first = await bus_event(stack, "history.turn", lambda d: d["turn"] == "speech")
        owners = first["conversation_id"]
        await bus_event(stack, "history.turn", lambda d: d["turn"] == "summary")

        again = stack.caller(from_=OWNER)
        async with again:
            await again.dial()
            update = await stack.mock.wait_for_client_event("session.update", timeout=unit(5))
            assert update
            second = await bus_event(stack, "history.turn", lambda d: d["turn"] == "speech")
        assert second["conversation_id"] == owners
        seeded = [
            e["item"]
            for e in stack.mock.sessions[1].received
            if e["type"] == "conversation.item.create"
        ]
        texts = [item["content"][0]["text"] for item in seeded if item["type"] == "message"]
        assert texts[0] == "Hello." and texts[1].startswith("Summary of an earlier phone call: ")

        stranger = stack.caller(from_="+15557770000")
        async with stranger:
            await stranger.dial()
            theirs = await bus_event(stack, "history.turn", lambda d: d["turn"] == "speech")
        assert theirs["conversation_id"] != owners
        assert not any(
            e["type"] == "conversation.item.create" and e["item"]["type"] == "message"
            for e in stack.mock.sessions[2].received
        )
        async with httpx.AsyncClient(base_url=stack.base) as http:
            listed = (await http.get("/api/history")).json()["conversations"]
        parties = {c["id"]: c["party"] for c in listed}
        assert parties[owners] == "owner"
        assert parties[theirs["conversation_id"]] == "caller:+15557770000"
