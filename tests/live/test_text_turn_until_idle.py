"""A text turn on a continuous backend ends at `AssistantIdle`, never at a reply's end: "let
me check" ends before the delegated work asked for its tool, and on one continuous track the
answer after a tool output may be part of a reply that was already running."""

from __future__ import annotations

from foreman.backends import interface as b
from foreman.session.turns import TextTurn, ToolOutputSent
from foreman.tools.request import ToolRequest


def said(reply: str, text: str) -> b.TranscriptSegment:
    return b.TranscriptSegment("assistant", text, False, reply=reply)


def feed(turn: TextTurn, *events: object) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for event in events:
        out += turn.feed(event)  # type: ignore[arg-type]
    return out


def test_let_me_check_does_not_end_the_turn_idle_does() -> None:
    turn = TextTurn(until_idle=True)
    feed(turn, b.ReplyStarted("r1"), said("r1", "Let me check."), b.ReplyEnded("r1"))
    assert not turn.done  # a turn-based backend would have ended here, before the tool
    feed(turn, ToolRequest("c1", "get_time", "{}"), ToolOutputSent("c1", True))
    out = feed(turn, b.ReplyStarted("r2"), said("r2", " Noon."), b.ReplyEnded("r2"))
    assert not turn.done and out == [{"delta": " Noon."}]
    (done,) = feed(turn, b.AssistantIdle())
    assert done == {"done": True, "transcript": "Let me check. Noon.", "status": "completed"}


def test_an_answer_inside_the_running_reply_is_settled_by_idle() -> None:
    turn = TextTurn(until_idle=True)
    feed(turn, b.ReplyStarted("r1"), said("r1", "One moment."))
    feed(turn, ToolRequest("c1", "get_time", "{}"), ToolOutputSent("c1", True))
    feed(turn, said("r1", " It is noon."), b.ReplyEnded("r1"))
    assert not turn.done
    (done,) = feed(turn, b.AssistantIdle())
    assert done["transcript"] == "One moment. It is noon."


def test_idle_while_a_call_still_waits_does_not_end_the_turn() -> None:
    turn = TextTurn(until_idle=True)
    feed(turn, b.ReplyStarted("r1"), said("r1", "Checking."), ToolRequest("c1", "send_sms", "{}"))
    assert feed(turn, b.ReplyEnded("r1"), b.AssistantIdle()) == []  # the approval is pending
    feed(turn, ToolOutputSent("c1", True), b.ReplyStarted("r2"), b.ReplyEnded("r2"))
    assert feed(turn, b.AssistantIdle())[0]["done"] is True


def test_a_turn_based_turn_still_ends_with_its_reply() -> None:
    turn = TextTurn()
    out = feed(turn, b.ReplyStarted("r1"), said("r1", "Hi."), b.ReplyEnded("r1"))
    assert out[-1] == {"done": True, "transcript": "Hi.", "status": "completed"}
