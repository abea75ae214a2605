"""The client's chat and history records: what the server sends, decoded and checked."""

from __future__ import annotations

import json

import pytest

from foreman.client_chat_types import (
    ChatDelta,
    ChatDone,
    ChatToolCall,
    ConversationDetail,
    read_chat_piece,
)
from foreman.client_types import UnexpectedResponse


def test_chat_events_become_typed_pieces_and_unknown_ones_are_skipped() -> None:
    assert read_chat_piece("delta", '{"text": "Hi"}') == ChatDelta("Hi")
    done = read_chat_piece(
        "done",
        json.dumps(
            {
                "conversation_id": "conv-1",
                "reply": "Sent.",
                "tool_calls": [{"call_id": "c1", "name": "send_sms", "ok": True, "output": "{}"}],
                "status": "completed",
                "error": None,
                "added_later": 1,
            }
        ),
    )
    assert isinstance(done, ChatDone) and done.completed
    assert done.tool_calls == (ChatToolCall("c1", "send_sms", None, True, "{}"),)
    assert done.raw["added_later"] == 1
    assert read_chat_piece("sparkle", "{}") is None
    with pytest.raises(UnexpectedResponse, match="chat: not JSON"):
        read_chat_piece("delta", "{nope")
    with pytest.raises(UnexpectedResponse, match=r"ChatDelta\.text"):
        read_chat_piece("delta", '{"text": 5}')


def test_a_conversation_with_its_turns() -> None:
    detail = ConversationDetail.from_json(
        {
            "conversation": {"id": "conv-1", "title": "hi", "current": True, "turns": 1},
            "turns": [
                {
                    "seq": 1,
                    "kind": "speech",
                    "text": "Sunny",
                    "data": {"cut": True, "heard_ms": 900, "full_text": "Sunny all day"},
                }
            ],
        }
    )
    assert detail.conversation.current and detail.turns[0].data["heard_ms"] == 900
