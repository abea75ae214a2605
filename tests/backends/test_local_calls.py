"""ToolCallLedger: the engine's conversation stays valid Chat Completions while a tool's
output is withheld (an approval pending) and the conversation goes on."""

from __future__ import annotations

from typing import Any

from foreman.backends.local_calls import ToolCallLedger


def _calls(*ids: str, content: str | None = None) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": content,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "send_sms", "arguments": "{}"}}
            for i in ids
        ],
    }


def _valid(messages: list[dict[str, Any]]) -> bool:
    """Every assistant message with tool_calls is followed at once by one output per call."""
    for n, m in enumerate(messages):
        if m.get("tool_calls"):
            ids = [c["id"] for c in m["tool_calls"]]
            after = messages[n + 1 : n + 1 + len(ids)]
            if [a.get("tool_call_id") for a in after] != ids:
                return False
    return True


def test_an_output_that_comes_at_once_follows_its_call_in_place() -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "the time?"}]
    ledger = ToolCallLedger(messages)
    call = _calls("c1")
    ledger.opened(call)
    assert ledger.pending
    assert ledger.answer("c1", '{"ok": true}')
    assert not ledger.pending
    assert messages[-2] is call and messages[-1]["tool_call_id"] == "c1"
    assert _valid(ledger.render(messages))


def test_a_withheld_call_is_hidden_then_recorded_where_its_output_arrives() -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "text my brother"}]
    ledger = ToolCallLedger(messages)
    ledger.opened(_calls("c1", content="Sure."))
    note = {"role": "user", "content": "(Tell the user: waiting for approval, NOT done)"}
    messages.append(note)
    messages.append({"role": "assistant", "content": "That needs approval."})
    shown = ledger.render(messages)
    # While it waits: the words said stay, the call is not shown, nothing reads as a result.
    assert shown[1] == {"role": "assistant", "content": "Sure."}
    assert not any("tool_calls" in m or m["role"] == "tool" for m in shown)
    assert ledger.answer("c1", '{"ok": true}')
    shown = ledger.render(messages)
    assert _valid(shown)
    assert [m["role"] for m in shown] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "assistant",
        "tool",
    ]
    assert shown[1] == {"role": "assistant", "content": "Sure."}
    assert shown[-2]["tool_calls"][0]["id"] == "c1" and shown[-1]["tool_call_id"] == "c1"


def test_a_call_without_words_leaves_no_empty_message_behind() -> None:
    messages: list[dict[str, Any]] = []
    ledger = ToolCallLedger(messages)
    ledger.opened(_calls("c1"))
    messages.append({"role": "user", "content": "(Tell the user: waiting)"})
    assert ledger.render(messages) == [messages[-1]]
    ledger.answer("c1", "{}")
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert _valid(messages)


def test_sibling_calls_wait_for_each_other_and_unknown_ids_change_nothing() -> None:
    messages: list[dict[str, Any]] = []
    ledger = ToolCallLedger(messages)
    ledger.opened(_calls("a", "b"))
    assert not ledger.answer("zzz", "{}")
    assert ledger.answer("b", '{"n": 2}')
    assert not ledger.answer("b", '{"n": 3}')  # one output per call
    assert ledger.pending and ledger.render(messages) == []
    assert ledger.answer("a", '{"n": 1}')
    assert not ledger.pending
    assert [m.get("tool_call_id") for m in messages[1:]] == ["a", "b"]
    assert messages[2]["content"] == '{"n": 2}'
    assert _valid(messages)
