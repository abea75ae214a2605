"""The console's model, without Textual or a server: events and answers in, transcripts,
conversations, approvals and what to read again out."""

from __future__ import annotations

import unicodedata
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scripted import CALL, CALL_SID, DESK, event, live_calls, prompt, status

from foreman.client import CallList
from foreman.tui import render
from foreman.tui.model import OWNER, ConsoleState, Refresh, Transcript


def said(t: Transcript) -> list[tuple[str, str, int | None]]:
    return [(line.role, line.text, line.cut_ms) for line in t.lines]


# --- transcripts ----------------------------------------------------------------------------
def test_a_streamed_reply_and_the_servers_utterance_are_one_line() -> None:
    t = Transcript()
    t.typed("hello")
    t.delta("Hi ")
    t.delta("there")
    assert t.lines[-1].streaming
    t.close_reply()
    t.said("user", "hello")  # the server's copy of the typed turn
    t.said("assistant", "Hi there")
    assert said(t) == [("user", "hello", None), ("assistant", "Hi there", None)]
    t.said("assistant", "Hi there")  # said again later: a new line
    assert len(t.lines) == 3


def test_the_servers_utterance_may_come_before_the_stream_ends() -> None:
    t = Transcript()
    t.delta("Hi")
    t.said("assistant", "Hi there, friend.")
    t.delta(" there, friend.")  # late pieces of words already shown whole
    t.close_reply()
    assert said(t) == [("assistant", "Hi there, friend.", None)]


def test_a_barge_in_marks_the_reply_being_said_or_the_next_one() -> None:
    t = Transcript()
    t.delta("A long answer")
    t.barge_in(1200)
    t.close_reply()
    assert t.lines[-1].cut_ms == 1200
    t.barge_in(800)  # a phone call: the cut comes before the utterance it cut
    t.said("assistant", "Another long answer")
    assert t.lines[-1].cut_ms == 800
    t.said("assistant", "Heard in full")
    assert t.lines[-1].cut_ms is None
    t.said("assistant", "Cut, says the server", heard_ms=450)
    assert t.lines[-1].cut_ms == 450


def test_an_empty_stream_leaves_no_line() -> None:
    t = Transcript()
    t.delta("")
    t.close_reply()
    assert t.lines == []


def test_tool_lines_follow_the_call() -> None:
    state = ConsoleState()
    state._owned(DESK)
    apply = [
        event(1, "session.tool_request", session_id=DESK, call_id="c1", name="send_sms"),
        event(2, "tool.call", session_id=DESK, call_id="c1", tool="send_sms",
              decision="needsapproval", reason="high risk"),
    ]  # fmt: skip
    for e in apply:
        state.apply(e, 0.0)
    (line,) = state.owner.transcript.lines
    assert (line.role, line.text, line.status) == ("tool", "send_sms", "waiting for approval")
    decided = prompt(tool="send_sms", state="approved", approver="api", session_id=DESK)
    state.apply(event(3, "approval.decided", **decided.raw), 0.0)
    assert line.status == "approved by api"
    state.apply(event(4, "tool.result", session_id=DESK, call_id="c1", ok=True), 0.0)
    assert line.status == "done (approved by api)"

    state.apply(event(5, "session.tool_request", session_id=DESK, call_id="c2", name="x"), 0.0)
    state.apply(
        event(6, "tool.call", session_id=DESK, call_id="c2", tool="x", decision="deny",
              reason="unknown caller"),
        0.0,
    )  # fmt: skip
    state.apply(event(7, "tool.result", session_id=DESK, call_id="c2", ok=False), 0.0)
    assert state.owner.transcript.lines[-1].status == "deny: unknown caller"


def test_a_typed_tool_notice_and_the_servers_request_are_one_line() -> None:
    t = Transcript()
    t.delta("Let me check.")
    t.tool("c1", "get_time")
    t.tool("c1", "get_time")
    assert [line.role for line in t.lines] == ["assistant", "tool"]
    assert not t.lines[0].streaming  # a tool call ends the words before it


# --- conversations --------------------------------------------------------------------------
def test_a_call_is_a_conversation_from_start_to_end() -> None:
    state = ConsoleState()
    r = state.apply(
        event(1, "session.started", session_id=CALL, channel="phone", caller="Ann",
              call_sid=CALL_SID, direction="inbound", **{"from": "+15550000111"}),
        0.0,
    )  # fmt: skip
    assert r == Refresh.CALLS
    conv = state.conversations[CALL]
    assert (conv.title, conv.caller, conv.live) == ("Ann", "+15550000111", True)
    state.apply(event(2, "session.transcript", session_id=CALL, role="user", text="Hi"), 0.0)
    state.apply(event(3, "session.ended", session_id=CALL, reason="caller hung up"), 0.0)
    assert not conv.live and conv.transcript.lines[-1].text == "call ended: caller hung up"
    assert [line.text for line in conv.transcript.lines][1] == "Hi"


def test_calls_read_from_the_server_start_and_end_conversations() -> None:
    state = ConsoleState()
    state.set_calls(live_calls())  # a call this console never saw start
    conv = state.conversations[CALL]
    assert conv.live and conv.title == "Ann" and conv.call_sid == CALL_SID
    state.set_calls(CallList())
    assert not conv.live


def test_a_call_list_read_before_an_event_does_not_undo_it() -> None:
    """The list and the event stream race: a list asked for before a call's start (or end)
    arrived by event is older news and must not end (or revive) it."""
    state = ConsoleState()
    asked_at = state.call_events
    state.apply(
        event(1, "session.started", session_id=CALL, channel="phone", call_sid=CALL_SID),
        0.0,
    )
    state.set_calls(CallList(), asked_at)  # read before the call started
    assert state.conversations[CALL].live
    asked_at = state.call_events
    state.apply(event(2, "session.ended", session_id=CALL, reason="caller hung up"), 0.0)
    state.set_calls(live_calls(), asked_at)  # read before the call ended
    assert not state.conversations[CALL].live
    state.set_calls(CallList(), state.call_events)  # a fresh read is believed
    assert not state.conversations[CALL].live
    state.set_calls(live_calls(), state.call_events)
    assert state.conversations[CALL].live


def test_the_owners_sessions_share_one_conversation() -> None:
    state = ConsoleState()
    state.set_status(status(session_id="desk-aaa"))
    state.apply(event(1, "session.transcript", session_id="desk-aaa", role="user", text="a"), 0)
    state.apply(event(2, "session.started", session_id="chat-1", channel="chat"), 0)
    state.apply(event(3, "session.transcript", session_id="chat-1", role="user", text="b"), 0)
    assert [line.text for line in state.owner.transcript.lines] == ["a", "b"]
    assert list(state.conversations) == [OWNER]


# --- what to read again ---------------------------------------------------------------------
def test_a_gap_in_seq_or_a_dropped_notice_means_read_everything() -> None:
    state = ConsoleState()
    state.opened()
    assert state.apply(event(7, "session.ready", session_id=DESK), 0) == Refresh.NONE
    assert state.apply(event(8, "session.ready", session_id=DESK), 0) == Refresh.NONE
    assert state.apply(event(10, "session.ready", session_id=DESK), 0) == Refresh.ALL
    assert state.apply(event(0, "events.dropped", count=3), 0) == Refresh.ALL
    assert state.apply(event(15, "session.ready", session_id=DESK), 0) == Refresh.NONE
    state.opened()  # a new stream: its numbers start wherever the server is
    assert state.apply(event(2, "session.ready", session_id=DESK), 0) == Refresh.NONE


@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=30))
def test_read_everything_exactly_when_a_number_is_skipped(steps: list[int]) -> None:
    state = ConsoleState()
    state.opened()
    seq = 0
    for i, step in enumerate(steps):
        seq += step
        refresh = state.apply(event(seq, "session.ready", session_id=DESK), 0)
        assert (refresh == Refresh.ALL) == (i > 0 and step > 1)


def test_families_and_shapes_this_console_cannot_read() -> None:
    state = ConsoleState()
    assert state.apply(event(1, "call.placed", call_sid="CA1", to="+1"), 0) == Refresh.CALLS
    assert state.apply(event(2, "wake.triggered", text="hey vim"), 0) == Refresh.WAKE
    assert state.apply(event(3, "mode", mode="voice"), 0) == Refresh.STATUS
    assert state.apply(event(4, "session.transcript", role="user"), 0) == Refresh.ALL
    assert state.apply(event(5, "approval.prompt", nonsense=True), 0) == Refresh.ALL


event_kinds = st.sampled_from(
    ["session.started", "session.ended", "session.failed", "session.transcript",
     "session.barge_in", "session.tool_request", "tool.call", "tool.result",
     "approval.prompt", "approval.decided", "mode", "call.recorded", "wake.x", "x.y"]
)  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
event_data = st.dictionaries(
    st.sampled_from(["session_id", "role", "text", "heard_ms", "call_id", "name", "id",
                     "tool", "state", "decision", "channel", "mode", "ok", "reason"]),
    json_values,
    max_size=8,
)  # fmt: skip


@settings(max_examples=40)
@given(st.lists(st.tuples(event_kinds, event_data), max_size=20))
def test_no_event_breaks_the_console(events: list[tuple[str, dict[str, Any]]]) -> None:
    state = ConsoleState()
    for seq, (kind, data) in enumerate(events, start=1):
        state.apply(event(seq, kind, **data), 0.0)
    for conv in state.conversations.values():
        render.transcript_text(conv)


# --- approvals ------------------------------------------------------------------------------
def test_a_list_read_before_a_prompt_arrived_does_not_hide_it() -> None:
    state = ConsoleState()
    asked_at = state.approval_events
    late = prompt(id="apr_late")
    state.apply(event(1, "approval.prompt", **late.raw), now=10.0)
    state.set_approvals([], now=11.0, asked_at=asked_at)  # the answer to the earlier read
    assert list(state.approvals) == ["apr_late"]
    assert state.approvals["apr_late"].remaining(10.0) == late.expires_in_s
    state.set_approvals([], now=12.0, asked_at=state.approval_events)  # read after it: gone
    assert state.approvals == {}


def test_a_decided_prompt_never_comes_back_and_the_queue_is_oldest_first() -> None:
    state = ConsoleState()
    old, new = prompt(id="apr_a", created_at=1.0), prompt(id="apr_b", created_at=2.0)
    state.apply(event(1, "approval.decided", **{**old.raw, "state": "denied"}), 0.0)
    state.set_approvals([new, old], now=0.0)
    assert list(state.approvals) == ["apr_b"]
    state.set_approvals([new, prompt(id="apr_c", created_at=0.5)], now=0.0)
    assert list(state.approvals) == ["apr_c", "apr_b"]


# --- how it reads ---------------------------------------------------------------------------
def test_times_read_plainly() -> None:
    assert [render.duration(s) for s in (0, 42, 187, 7500)] == ["0s", "42s", "3m 07s", "2h 05m"]
    assert [render.countdown(s) for s in (0, 0.4, 59.5, 95)] == ["0:00", "0:01", "1:00", "1:35"]
    assert render.since("2026-09-21T14:10:05Z") == "14:10:05 UTC" and render.since(None) == "—"


@given(st.text(max_size=40))
def test_arguments_show_every_character_that_would_not_show(value: str) -> None:
    shown = render.arguments_text({"body": value}).plain
    hidden = [c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    for char in hidden:
        if char != "\n":
            assert char not in shown and f"\\u{ord(char):04x}" in shown
    if not [c for c in hidden if c != "\n"]:
        assert value.replace("\n", "") in shown.replace("\n  │ ", "")


def test_arguments_are_complete_one_field_a_line() -> None:
    long = "word " * 200
    shown = render.arguments_text({"to": "+15550000111", "body": long, "n": [1, 2]}).plain
    assert shown.startswith("to    +15550000111\nbody\n  │ word word")
    assert long in shown and shown.endswith("\nn\n  │ [\n  │   1,\n  │   2\n  │ ]")
    assert render.arguments_text(["a"]).plain == '[\n  "a"\n]'
