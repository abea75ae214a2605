"""One history across chat and voice: a voice session started after a chat begins with the
chat turns (checked at the mock Realtime server), writes its own turns into the same
conversation, leaves a summary when it ends, and the next chat turn sees that summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chat_stack import SUMMARY, chat_stack

from foreman.testing.timeouts import unit


def _items(received: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) of the conversation items the client created, in order."""
    out = []
    for event in received:
        if event["type"] == "conversation.item.create" and event["item"]["type"] == "message":
            item = event["item"]
            out.append((item["role"], item["content"][0]["text"]))
    return out


async def _say(stack: Any, text: str) -> list[dict[str, Any]]:
    lines = []
    async with stack.api.stream("POST", "/api/realtime/say", json={"text": text}) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line:
                lines.append(json.loads(line))
    return lines


async def test_voice_after_chat_is_seeded_and_leaves_a_summary_the_next_chat_sees(
    tmp_path: Path,
) -> None:
    async with chat_stack(tmp_path) as stack:
        first = (await stack.chat("remember the code word is pelican")).json()
        conversation = first["conversation_id"]

        # Voice from chat: the mode changes, and the session starts with the chat turns.
        status = (await stack.api.post("/api/realtime/start")).json()
        assert status["active"] is True and status["mode"] == "voice"
        assert (await stack.event("mode"))["mode"] == "voice"
        session = await stack.mock.wait_for_session(timeout=unit(5))
        received = session.received
        update_at = next(i for i, e in enumerate(received) if e["type"] == "session.update")
        seeded = received[update_at + 1 : update_at + 3]
        assert [e["type"] for e in seeded] == ["conversation.item.create"] * 2
        assert _items(seeded) == [
            ("user", "remember the code word is pelican"),
            ("assistant", "You said: remember the code word is pelican"),
        ]
        assert not any(e["type"] == "response.create" for e in received[: update_at + 3])

        # A chat turn meanwhile is refused: the owner talks in the voice session now.
        busy = await stack.chat("hello?")
        assert busy.status_code == 409 and "voice session" in busy.json()["detail"]

        # The voice session says goodbye and ends the call: back to text.
        lines = await _say(stack, "ok bye")
        assert "".join(p.get("delta", "") for p in lines) == "Goodbye!"
        while (await stack.event("mode"))["mode"] != "text":
            pass
        assert (await stack.api.get("/api/realtime/status")).json()["mode"] == "text"
        summary = await stack.event("history.turn", lambda d: d["turn"] == "summary")
        assert summary["conversation_id"] == conversation and summary["text"] == SUMMARY

        turns = await stack.turns(conversation)
        voice = [t for t in turns if t["channel"] == "local_voice"]
        assert [(t["kind"], t["text"]) for t in voice if t["kind"] != "tool_result"] == [
            ("typed", "ok bye"),
            ("speech", "Goodbye!"),
            ("tool_call", "end_call"),
            ("summary", SUMMARY),
        ]
        assert voice[-1]["data"]["source"] == "model"
        assert voice[-1]["session_id"] == status["session_id"]
        # The summary was written by the chat model from the voice transcript.
        asked = next(r for r in stack.llm.requests if "Summarize" in r["messages"][0]["content"])
        assert "ok bye" in asked["messages"][1]["content"]

        # The next chat turn sees what was said and done by voice.
        after = await stack.chat("what did we just do?")
        assert after.status_code == 200 and after.json()["conversation_id"] == conversation
        context = stack.llm.requests[-1]["messages"]
        notes = [m["content"] for m in context if m["role"] == "system"]
        assert any(SUMMARY in n for n in notes)
        assert {"role": "user", "content": "ok bye"} in context


async def test_a_chat_right_after_voice_waits_for_the_summary(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        await stack.chat("hi")
        await stack.api.post("/api/realtime/start")
        await _say(stack, "hello there")
        stop = await stack.api.post("/api/realtime/stop")
        assert stop.json()["mode"] == "text"
        # No waiting for the summary event: the turn itself waits until it is stored.
        reply = await stack.chat("and now?")
        assert reply.status_code == 200
        context = stack.llm.requests[-1]["messages"]
        # The summary was stored before the new message: the model reads it, then the message.
        assert SUMMARY in context[-2]["content"] and context[-2]["role"] == "system"
        assert context[-1] == {"role": "user", "content": "and now?"}


async def test_a_session_that_only_said_nothing_leaves_no_summary(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        await stack.api.post("/api/realtime/start")
        await stack.api.post("/api/realtime/stop")
        await stack.chat("hi")
        conversations = (await stack.api.get("/api/history")).json()["conversations"]
        (only,) = conversations
        assert [t["kind"] for t in await stack.turns(only["id"])] == ["typed", "reply"]
        assert not any("Summarize" in r["messages"][0]["content"] for r in stack.llm.requests)


async def test_without_a_chat_model_the_summary_is_a_digest(tmp_path: Path) -> None:
    async with chat_stack(tmp_path, chat={"enabled": False}) as stack:
        await stack.api.post("/api/realtime/start")
        await _say(stack, "ok bye")
        summary = await stack.event("history.turn", lambda d: d["turn"] == "summary")
        assert summary["text"].startswith("A voice session with Godfather (ended: end_call).")
        assert 'The user said "ok bye"' in summary["text"]
        assert "end_call: done" in summary["text"]
