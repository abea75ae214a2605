"""`ConversationLedger`: what a new session is given after a drop or a rollover."""

from __future__ import annotations

import base64

from foreman.protocols.realtime.backlog import AudioBacklog
from foreman.protocols.realtime.replay import ConversationLedger, heard_share


def kinds(items: list[dict]) -> list[str]:
    return [i.get("role") or i["type"] for i in items]


def test_replay_in_order_as_heard_with_calls_and_outputs() -> None:
    led = ConversationLedger()
    led.text("system", "Earlier: the owner asked about Paris.")
    led.user_committed("u1")  # committed before the reply, transcribed after it started
    led.assistant_delta("a1", "Let me ")
    led.user_transcript("u1", " What's the weather? ")
    led.assistant_done("a1", "Let me check the weather.")
    led.call("c1", "get_weather", '{"city": "Paris"}')
    led.output("c1", '{"temp_c": 21}')
    led.assistant_delta("a2", "It is twenty one degrees and sunny all day")
    led.assistant_done("a2", "It is twenty one degrees and sunny all day long.")
    led.assistant_heard("a2", heard_ms=1000, audio_ms=4000)
    items = led.replay()
    assert kinds(items) == [
        "system", "user", "assistant", "function_call", "function_call_output", "assistant",
    ]  # fmt: skip
    assert items[1]["content"] == [{"type": "input_text", "text": "What's the weather?"}]
    assert items[2]["content"] == [{"type": "output_text", "text": "Let me check the weather."}]
    assert items[3] == {
        "type": "function_call", "call_id": "c1", "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }  # fmt: skip
    assert items[4] == {"type": "function_call_output", "call_id": "c1", "output": '{"temp_c": 21}'}
    # A quarter heard, cut back to a whole word: never more than the user heard.
    assert items[5]["content"][0]["text"] == "It is twenty"


def test_untranscribed_turns_are_left_out_and_a_pending_call_replays_without_output() -> None:
    led = ConversationLedger()
    led.user_committed("u1")  # transcription never came
    led.call("c1", "send_sms", "{}")
    assert led.pending_calls == ("c1",)
    assert kinds(led.replay()) == ["function_call"]
    seq = led.last_seq
    assert led.output("c1", "sent") is True
    assert led.output("c1", "again") is False  # exactly one output per call
    assert led.pending_calls == ()
    # Only what came since `seq`: the output, whose call went out before.
    assert led.replay(after=seq) == [
        {"type": "function_call_output", "call_id": "c1", "output": "sent"}
    ]


def test_a_reply_cut_by_a_drop_keeps_its_words_so_far() -> None:
    led = ConversationLedger()
    led.assistant_delta("a1", "The meeting is ")
    led.assistant_delta("a1", "at three")
    assert led.unfinished_assistant() == [("a1", "The meeting is at three")]
    led.finish_assistant("a1")
    assert led.unfinished_assistant() == []
    assert led.replay()[0]["content"][0]["text"] == "The meeting is at three"


def test_the_window_keeps_the_newest_and_never_an_orphan_output() -> None:
    led = ConversationLedger(max_items=3)
    led.call("c1", "t", "{}")
    led.output("c1", "one")
    for n in range(3):
        led.text("user", f"turn {n}")
    items = led.replay()
    assert [i["content"][0]["text"] for i in items] == ["turn 0", "turn 1", "turn 2"]
    led2 = ConversationLedger(max_items=3)
    led2.call("c1", "t", "{}")
    led2.output("c1", "one")
    led2.text("user", "a")
    led2.text("user", "b")
    # The call fell out of the window: its output goes too (an output must follow its call).
    assert kinds(led2.replay()) == ["user", "user"]


def test_memory_is_bounded() -> None:
    led = ConversationLedger(max_items=10)
    for n in range(10_000):
        led.text("user", f"t{n}")
    assert len(led._entries) <= 20
    assert len(led.replay()) == 10


def test_heard_share_cuts_back_to_a_whole_word() -> None:
    assert heard_share("hello wonderful world", 500, 1000) == "hello"
    assert heard_share("hello world", 2000, 1000) == "hello world"
    assert heard_share("hello world", 0, 1000) == ""


def test_audio_backlog_drops_the_oldest_beyond_its_bound_and_counts() -> None:
    backlog = AudioBacklog(max_bytes=480)  # 60 ms of µ-law
    chunks = [base64.b64encode(bytes([n]) * 160).decode() for n in range(5)]  # 20 ms each
    for c in chunks:
        backlog.add(c)
    assert backlog.bytes == 480 and backlog.dropped_bytes == 320
    assert list(backlog.drain()) == chunks[2:]  # the newest, oldest first
    assert not backlog and backlog.bytes == 0


def test_a_user_turn_never_transcribed_is_known_as_unheard() -> None:
    led = ConversationLedger()
    assert not led.last_user_unheard()
    led.user_committed("u1")
    led.assistant_done("a1", "Hi.")
    assert led.last_user_unheard()  # the newest user turn has no words yet
    led.user_transcript("u1", "hello")
    assert not led.last_user_unheard()
