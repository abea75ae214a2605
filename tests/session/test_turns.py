"""TurnTracker and TextTurn: who is talking, and where a typed turn ends. No asyncio."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from foreman.backends.interface import (
    AssistantAudio,
    AssistantIdle,
    BackendEvent,
    Closed,
    ReplyEnded,
    ReplyStarted,
    SegmentEnded,
    TranscriptSegment,
    UserSpeechStarted,
)
from foreman.session.turns import TextTurn, ToolOutputSent, TurnTracker
from foreman.tools.request import ToolRequest

Fed = BackendEvent | ToolOutputSent


def delta(text: str, reply: str | None = "r1") -> TranscriptSegment:
    return TranscriptSegment("assistant", text, final=False, reply=reply)


def call(call_id: str = "c1", name: str = "send_sms") -> ToolRequest:
    return ToolRequest(call_id, name, "{}")


# --- TurnTracker ---------------------------------------------------------------------------
def test_busy_from_reply_started_until_idle() -> None:
    turns = TurnTracker()
    assert not turns.busy
    turns.reply_started("r1")
    assert turns.busy and turns.active == {"r1"}
    turns.reply_ended("r1")
    assert turns.busy and not turns.active  # the backend decides when it is idle
    assert turns.replies == 1
    turns.idle()
    assert not turns.busy


def test_audio_before_its_reply_started_means_the_reply_runs() -> None:
    turns = TurnTracker()
    assert turns.audio_wanted("r1")
    assert turns.busy and turns.active == {"r1"}


@pytest.mark.parametrize("repeat", [1, 50])
def test_filler_audio_is_played_and_never_makes_the_assistant_busy(repeat: int) -> None:
    turns = TurnTracker()
    for _ in range(repeat):
        assert turns.audio_wanted("")
    assert not turns.busy and not turns.active
    turns.reply_started("r1")
    turns.barge_in()
    assert turns.audio_wanted("")  # filler is nobody's reply: never discarded
    assert turns.late_audio_dropped == 0


def test_barge_in_discards_every_running_reply_and_refuses_their_late_audio() -> None:
    turns = TurnTracker()
    turns.reply_started("r2")
    turns.reply_started("r1")
    turns.reply_started("r3")
    turns.reply_ended("r3")
    assert turns.barge_in() == ["r1", "r2"]
    assert not turns.audio_wanted("r1")
    assert not turns.audio_wanted("r2")
    assert turns.audio_wanted("r3")  # it ended before the barge-in: not cut off
    assert turns.late_audio_dropped == 2
    turns.reply_ended("r1")
    turns.reply_ended("r2")
    turns.idle()
    assert not turns.audio_wanted("r1")  # still refused after the backend went idle
    assert not turns.busy
    assert turns.audio_wanted("r4") and turns.busy  # the next reply plays


def test_barge_in_with_nothing_running_discards_nothing() -> None:
    turns = TurnTracker()
    assert turns.barge_in() == []
    assert turns.audio_wanted("r1")


def test_a_reply_cut_off_long_ago_is_still_refused_after_many_later_barge_ins() -> None:
    turns = TurnTracker()
    turns.reply_started("long")
    for i in range(100):  # each barge-in cuts "long" again together with a short reply
        turns.reply_started(f"r{i}")
        turns.barge_in()
        turns.reply_ended(f"r{i}")
    assert not turns.audio_wanted("long")


# --- TextTurn: examples --------------------------------------------------------------------
def run(turn: TextTurn, events: list[Fed]) -> list[dict[str, Any]]:
    return [piece for event in events for piece in turn.feed(event)]


DONE_OK = {"done": True, "transcript": "Hi there.", "status": "completed"}

TURN_CASES: list[tuple[str, list[Fed], list[dict[str, Any]]]] = [
    (
        "one reply",
        [ReplyStarted("r1"), delta("Hi "), delta("there."), ReplyEnded("r1"), AssistantIdle()],
        [{"delta": "Hi "}, {"delta": "there."}, DONE_OK],
    ),
    (
        "a reply that started before the turn is not ours",
        [delta("old", "r0"), ReplyEnded("r0"), AssistantIdle(),
         ReplyStarted("r1"), delta("Hi there."), ReplyEnded("r1")],
        [{"delta": "Hi there."}, DONE_OK],
    ),
    (
        "final transcripts and user text are not deltas",
        [ReplyStarted("r1"), delta("Hi there."),
         TranscriptSegment("assistant", "Hi there.", final=True, reply="r1"),
         TranscriptSegment("user", "hello", final=False),
         ReplyEnded("r1")],
        [{"delta": "Hi there."}, DONE_OK],
    ),
    (
        "a tool call is owed its output, then the answer",
        [ReplyStarted("r1"), call(), ReplyEnded("r1"), AssistantIdle(),
         ToolOutputSent("c1", respond=True), AssistantIdle(),
         ReplyStarted("r2"), delta("Hi there."), ReplyEnded("r2")],
        [{"tool": "send_sms", "call_id": "c1"}, {"delta": "Hi there."}, DONE_OK],
    ),
    (
        "an output sent without respond ends the turn",
        [ReplyStarted("r1"), delta("Hi there."), call(), ReplyEnded("r1"),
         ToolOutputSent("c1", respond=False)],
        [{"delta": "Hi there."}, {"tool": "send_sms", "call_id": "c1"}, DONE_OK],
    ),
    (
        "an output for another call changes nothing",
        [ReplyStarted("r1"), call(), ReplyEnded("r1"), ToolOutputSent("c9", respond=False)],
        [{"tool": "send_sms", "call_id": "c1"}],
    ),
    (
        "a status note while the output is withheld does not end the turn",
        [ReplyStarted("r1"), call(), ReplyEnded("r1"),
         ReplyStarted("r2"), delta("Waiting. "), ReplyEnded("r2"), AssistantIdle(),
         ToolOutputSent("c1", respond=True),
         ReplyStarted("r3"), delta("Sent."), ReplyEnded("r3")],
        [{"tool": "send_sms", "call_id": "c1"}, {"delta": "Waiting. "}, {"delta": "Sent."},
         {"done": True, "transcript": "Waiting. Sent.", "status": "completed"}],
    ),
    (
        "an output sent before its reply ended still owes the answer",
        [ReplyStarted("r1"), call(), ToolOutputSent("c1", respond=True), ReplyEnded("r1"),
         ReplyStarted("r2"), delta("Hi there."), ReplyEnded("r2")],
        [{"tool": "send_sms", "call_id": "c1"}, {"delta": "Hi there."}, DONE_OK],
    ),
    (
        "a cancelled reply ends the turn",
        [ReplyStarted("r1"), delta("Hi"), ReplyEnded("r1", "cancelled")],
        [{"delta": "Hi"}, {"done": True, "transcript": "Hi", "status": "cancelled"}],
    ),
    (
        "a failed reply ends the turn",
        [ReplyStarted("r1"), ReplyEnded("r1", "failed")],
        [{"done": True, "transcript": "", "status": "failed"}],
    ),
    (
        "a cancelled turn still waits for its tool's output, but not for an answer",
        [ReplyStarted("r1"), call(), ReplyEnded("r1", "cancelled"),
         ToolOutputSent("c1", respond=True)],
        [{"tool": "send_sms", "call_id": "c1"},
         {"done": True, "transcript": "", "status": "cancelled"}],
    ),
    (
        "a continuous backend's reply ends when it goes idle",
        [ReplyStarted("live_1"), delta("Hi there.", "live_1"), AssistantIdle()],
        [{"delta": "Hi there."}, DONE_OK],
    ),
    (
        "idle before any reply of the turn ends nothing",
        [AssistantIdle(), ReplyStarted("r1"), delta("Hi there."), ReplyEnded("r1")],
        [{"delta": "Hi there."}, DONE_OK],
    ),
    (
        "closed ends the turn whatever is owed",
        [ReplyStarted("r1"), call(), delta("Hi"), Closed("connection lost")],
        [{"tool": "send_sms", "call_id": "c1"}, {"delta": "Hi"},
         {"done": True, "transcript": "Hi", "status": "closed", "error": "connection lost"}],
    ),
    (
        "closed without an error",
        [Closed()],
        [{"done": True, "transcript": "", "status": "closed"}],
    ),
    (
        "nothing after done",
        [ReplyStarted("r1"), delta("Hi there."), ReplyEnded("r1"),
         ReplyStarted("r2"), delta("more"), call("c2"), Closed()],
        [{"delta": "Hi there."}, DONE_OK],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "expected"), [c[1:] for c in TURN_CASES], ids=[c[0] for c in TURN_CASES]
)
def test_text_turn(events: list[Fed], expected: list[dict[str, Any]]) -> None:
    turn = TextTurn()
    assert run(turn, events) == expected
    assert turn.done is any("done" in piece for piece in expected)


@pytest.mark.parametrize("status", ["cancelled", "failed", "incomplete"])
def test_a_cancelled_or_failed_turn_waits_for_its_tool_outputs(status: str) -> None:
    """Regression: a cancelled reply ended the turn while its tool call still waited for an
    output, so the output (and the answer the model gave from it) landed in the next turn."""
    turn = TextTurn()
    assert run(turn, [ReplyStarted("r1"), call("c1"), call("c2"), ReplyEnded("r1", status)]) == [
        {"tool": "send_sms", "call_id": "c1"},
        {"tool": "send_sms", "call_id": "c2"},
    ]
    assert turn.feed(ToolOutputSent("c1", respond=True)) == []
    assert turn.feed(ToolOutputSent("c2", respond=True)) == [
        {"done": True, "transcript": "", "status": status}
    ]


def test_audio_pieces_only_when_asked_for_and_only_of_its_own_replies() -> None:
    events: list[Fed] = [
        AssistantAudio(b"old", "seg_0", "r0"),
        ReplyStarted("r1"),
        AssistantAudio(b"new", "seg_1", "r1"),
        AssistantAudio(b"\xff", "", ""),
        SegmentEnded("seg_1"),
        UserSpeechStarted(10),
    ]
    assert run(TextTurn(audio=True), events) == [{"audio": b"new", "segment": "seg_1"}]
    assert run(TextTurn(), events) == []


# --- TextTurn: property --------------------------------------------------------------------
REPLIES = ["r0", "r1", "r2", "r3"]  # r0 started before the turn was sent
CALLS = ["c1", "c2", "c3"]
EVENTS = st.one_of(
    st.sampled_from(REPLIES[1:]).map(ReplyStarted),
    st.tuples(st.sampled_from(REPLIES), st.sampled_from(["a", "b"])).map(
        lambda t: delta(f"{t[0]}{t[1]} ", t[0])
    ),
    st.sampled_from(CALLS).map(call),
    st.tuples(st.sampled_from(CALLS), st.booleans()).map(lambda t: ToolOutputSent(*t)),
    st.tuples(
        st.sampled_from(REPLIES), st.sampled_from(["completed", "completed", "cancelled", "failed"])
    ).map(lambda t: ReplyEnded(*t)),
    st.just(AssistantIdle()),
)


@settings(max_examples=400, deadline=None)
@given(events=st.lists(EVENTS, max_size=30), close=st.booleans(), continuous=st.booleans())
@example(  # cancelled while a tool call of the turn waited for its output
    events=[ReplyStarted("r1"), call("c1"), ReplyEnded("r1", "cancelled")],
    close=False,
    continuous=False,
)
@example(  # a continuous backend: going idle is the only end of a reply
    events=[ReplyStarted("r1"), delta("x", "r1")], close=False, continuous=True
)
def test_done_once_never_while_a_call_is_owed_and_never_with_foreign_text(
    events: list[Fed], close: bool, continuous: bool
) -> None:
    turn = TextTurn()
    started: set[str] = set()
    owed: set[str] = set()
    done: list[dict[str, Any]] = []
    text: list[str] = []
    for event in [*events, *([Closed()] if close else [])]:
        was_done = turn.done
        if isinstance(event, ReplyStarted):
            started.add(event.reply)
        if isinstance(event, ToolOutputSent):
            owed.discard(event.call_id)
        if isinstance(event, ToolRequest) and not was_done:
            owed.add(event.call_id)
        pieces = turn.feed(event)
        if was_done:
            assert pieces == []  # nothing after done
        for piece in pieces:
            if "delta" in piece:
                assert isinstance(event, TranscriptSegment) and event.reply in started
                assert event.reply != "r0"
                text.append(piece["delta"])
            if "done" in piece:
                done.append(piece)
                if piece["status"] != "closed":
                    assert not owed, f"done while {owed} lacked their output"
    assert len(done) <= 1
    assert turn.done is bool(done)
    if done:
        assert done[0]["transcript"] == "".join(text)

    # Liveness: once every reply ended, every call got its output and an answer came and
    # ended, the turn is over. A continuous backend says a reply ended only by going idle.
    def end_replies(replies: list[str]) -> None:
        if continuous:
            turn.feed(AssistantIdle())
        for reply in replies:
            turn.feed(ReplyEnded(reply))

    end_replies([] if continuous else sorted(turn.running))
    for call_id in sorted(turn.pending_calls):
        turn.feed(ToolOutputSent(call_id, respond=True))
    turn.feed(ReplyStarted("answer"))
    end_replies(["answer"])
    assert turn.done
