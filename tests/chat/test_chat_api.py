"""Chat through the whole server: the chat model (a loopback stand-in through the real
`openai` client), the real tool dispatcher, gatekeeper and approvals over HTTP, the history
in the SQLite file, and the event stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from chat_stack import ANN, chat_stack, sse_events

from foreman.testing.chat_standin import Answer, Rule, When
from foreman.testing.timeouts import unit


async def test_a_chat_turn_and_a_second_that_sees_the_first(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        first = await stack.chat("my name is Vim")
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["reply"] == "You said: my name is Vim" and body["tool_calls"] == []
        conversation = body["conversation_id"]
        second = await stack.chat("what is my name?")
        assert second.json()["conversation_id"] == conversation  # the owner's current one
        sent = stack.llm.requests[-1]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
        assert sent[1]["content"] == "my name is Vim"
        assert sent[2]["content"] == "You said: my name is Vim"
        assert sent[3]["content"] == "what is my name?"
        turns = await stack.turns(conversation)
        assert [(t["seq"], t["kind"], t["role"], t["channel"]) for t in turns] == [
            (1, "typed", "user", "chat"),
            (2, "reply", "assistant", "chat"),
            (3, "typed", "user", "chat"),
            (4, "reply", "assistant", "chat"),
        ]
        assert turns[0]["session_id"].startswith("chat-") and turns[0]["caller"] == "Godfather"
        listed = (await stack.api.get("/api/history")).json()["conversations"]
        assert listed[0]["id"] == conversation and listed[0]["current"] is True
        assert listed[0]["title"] == "my name is Vim" and listed[0]["turns"] == 4
        # chat turns, each stored turn and its end are on the event stream
        started = await stack.event("chat.started")
        assert started["conversation_id"] == conversation
        added = await stack.event("history.turn")
        assert added == {
            "conversation_id": conversation,
            "seq": 1,
            "turn": "typed",
            "role": "user",
            "text": "my name is Vim",
            "channel": "chat",
            "session_id": started["session_id"],
        }
        ended = await stack.event("chat.ended")
        assert ended["status"] == "completed" and ended["session_id"] == started["session_id"]


async def test_a_tool_call_waits_for_the_owner_answered_over_http(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        turn = asyncio.create_task(stack.chat("text Ann that I am running late"))
        prompt = await stack.event("approval.prompt")
        assert prompt["tool"] == "send_sms" and prompt["channel"] == "chat"
        assert prompt["arguments"] == {"to": ANN, "body": "Running late"}
        # The model was told nothing has happened yet, and answered meanwhile; it has no
        # output for the call, and nothing was sent.
        said = await stack.event("history.turn", lambda d: "nothing is sent yet" in d["text"])
        assert said["turn"] == "reply"
        interim = stack.llm.requests[1]["messages"]
        assert interim[-1]["role"] == "system" and "NOT been done" in interim[-1]["content"]
        assert not any(m["role"] == "tool" or m.get("tool_calls") for m in interim)
        assert stack.rest.messages == []
        # A second turn in the same conversation waits its turn.
        busy = await stack.chat("and another thing")
        assert busy.status_code == 409 and "already running" in busy.json()["detail"]

        answer = await stack.api.post(
            "/api/approval/answer", json={"id": prompt["id"], "approve": True}
        )
        assert answer.status_code == 200
        result = await asyncio.wait_for(turn, unit(20))
        assert result.status_code == 200, result.text
        body = result.json()
        assert body["reply"] == (
            "Texting Ann.\n\nI asked for your approval; nothing is sent yet.\n\nSent."
        )
        (call,) = body["tool_calls"]
        assert call["name"] == "send_sms" and call["ok"] is True
        (sms,) = await stack.rest.wait_for("message", timeout=unit(5))
        assert sms["to"] == ANN and sms["sid"] in call["output"]
        # The final request carries the call and its one, real output.
        final = stack.llm.requests[-1]["messages"]
        (tool_message,) = [m for m in final if m["role"] == "tool"]
        assert json.loads(tool_message["content"])["ok"] is True
        turns = await stack.turns(body["conversation_id"])
        kinds = [(t["kind"], t["data"].get("state")) for t in turns]
        assert kinds == [
            ("typed", None),
            ("reply", None),
            ("tool_call", None),
            ("approval", "pending"),
            ("reply", None),
            ("approval", "approved"),
            ("tool_result", None),
            ("reply", None),
        ]
        assert turns[2]["data"]["arguments"] == {"to": ANN, "body": "Running late"}
        assert turns[4]["data"] == {"interim": True}
        assert turns[6]["data"]["ok"] is True and turns[5]["data"]["approver"] == "api"
        audit = (await stack.api.get("/api/audit?limit=1")).json()["records"][0]
        assert audit["channel"] == "chat" and audit["decision"] == "approved"
        assert audit["session_id"] == body["session_id"]


async def test_a_denied_call_is_never_run_and_the_model_hears_so(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        turn = asyncio.create_task(stack.chat("text Ann hi"))
        prompt = await stack.event("approval.prompt")
        await stack.api.post(
            "/api/approval/answer", json={"id": prompt["id"], "approve": False, "note": "no"}
        )
        body = (await asyncio.wait_for(turn, unit(20))).json()
        assert body["tool_calls"][0]["ok"] is False
        assert "NOT done" in body["tool_calls"][0]["output"]
        assert stack.rest.messages == []


async def test_the_stream_carries_deltas_tool_events_and_the_end(tmp_path: Path) -> None:
    rules = [Rule(When.user("time"), Answer.say("Let me look.").and_call("get_time", {}))]
    async with chat_stack(tmp_path, rules) as stack:
        r = await stack.api.post("/api/chat/stream", json={"message": "what time is it?"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.text)
        names = [name for name, _ in events]
        assert names[0] == "start" and names[-1] == "done"
        assert "".join(d["text"] for n, d in events if n == "delta") == "Let me look.Done."
        tool = next(d for n, d in events if n == "tool")
        result = next(d for n, d in events if n == "tool_result")
        assert tool["name"] == result["name"] == "get_time" and result["ok"] is True
        assert names.index("tool") < names.index("tool_result")
        done = events[-1][1]
        assert done["status"] == "completed" and done["reply"] == "Let me look.\n\nDone."


async def test_a_reader_that_goes_away_stops_the_turn_and_keeps_what_was_said(
    tmp_path: Path,
) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    rules = [Rule(When.user("talk"), Answer.say(words, delay_ms=20))]
    async with chat_stack(tmp_path, rules) as stack:
        async with stack.api.stream("POST", "/api/chat/stream", json={"message": "talk"}) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: delta"):
                    break  # the reader goes away mid-reply
        ended = await stack.event("chat.ended")
        assert ended["status"] == "stopped"
        conversation = ended["conversation_id"]
        turns = await stack.turns(conversation)
        assert [t["kind"] for t in turns] == ["typed", "reply"]
        kept = turns[1]
        assert kept["data"] == {"stopped": True}
        assert words.startswith(kept["text"]) and 0 < len(kept["text"]) < len(words)
        # The conversation is free again.
        assert (await stack.chat("hello", conversation_id=conversation)).status_code == 200


async def test_bad_requests_are_named(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        r = await stack.api.post("/api/chat", json={"message": ""})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "message"]
        r = await stack.api.post("/api/chat", json={"message": "hi", "extra": 1})
        assert r.status_code == 422
        r = await stack.chat("hi", conversation_id="conv-nope")
        assert r.status_code == 404 and "conv-nope" in r.json()["detail"]
        r = await stack.api.get("/api/history/conv-nope")
        assert r.status_code == 404
        r = await stack.api.get("/api/history/bad%20id")
        assert r.status_code == 422
        assert (await stack.api.get("/api/history?limit=0")).status_code == 422


async def test_without_a_chat_model_chat_is_a_400_that_says_what_to_set(tmp_path: Path) -> None:
    # No key, and the offline engine's local model turned off too.
    no_model = {"chat": {"base_url": "https://api.openai.com/v1"}, "local": {"use": "never"}}
    async with chat_stack(tmp_path, **no_model) as stack:
        r = await stack.chat("hi")
        assert r.status_code == 400 and "OPENAI_API_KEY" in r.json()["detail"]
        assert (await stack.api.get("/api/history")).json() == {"conversations": []}


async def test_a_failing_model_is_a_502_and_the_typed_turn_is_kept(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        stack.llm.fail_next(500, "boom", times=5)
        r = await stack.chat("hello?")
        assert r.status_code == 502 and "HTTP 500" in r.json()["detail"]
        conversation = (await stack.api.get("/api/history")).json()["conversations"][0]["id"]
        assert [t["kind"] for t in await stack.turns(conversation)] == ["typed"]


async def test_openapi_documents_the_chat_routes(tmp_path: Path) -> None:
    async with chat_stack(tmp_path) as stack:
        spec = (await stack.api.get("/openapi.json")).json()
    stream = spec["paths"]["/api/chat/stream"]["post"]["responses"]
    assert "text/event-stream" in stream["200"]["content"]
    assert {"400", "404", "409", "422"} <= set(stream)
    chat = spec["paths"]["/api/chat"]["post"]["responses"]
    assert {"200", "400", "404", "409", "422", "502"} <= set(chat)
    assert "/api/history/{conversation_id}" in spec["paths"]


_ = httpx  # the stack's client type
