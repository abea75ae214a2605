"""What the offline engine's model is sent: the clock note and where it goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from foreman.audio.formats import AudioFormat, Encoding
from foreman.backends.interface import BackendOptions
from foreman.backends.local_prompt import (
    SPOKEN_STYLE,
    clock_note,
    prompt_messages,
    with_clock,
)

PARIS_WINTER = timezone(timedelta(hours=1), "CET")
UTC_ZONE = UTC


def _options(instructions: str = "You are Foreman.") -> BackendOptions:
    fmt = AudioFormat(Encoding.PCM16, 16_000)
    return BackendOptions("local", "", "", instructions, fmt, fmt)


def test_the_clock_note_says_the_time_both_ways_and_the_date() -> None:
    afternoon = datetime(2026, 12, 2, 14, 5, tzinfo=PARIS_WINTER)
    assert clock_note(afternoon) == "It is now 2:05 PM (14:05 CET) on Wednesday, 2 December 2026."
    morning = datetime(2027, 1, 1, 9, 30, tzinfo=UTC_ZONE)
    assert clock_note(morning) == "It is now 9:30 AM (09:30 UTC) on Friday, 1 January 2027."


UTC_ZONE = UTC


def test_the_note_goes_just_before_the_last_user_message() -> None:
    history = [
        {"role": "system", "content": "style"},
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "What time is it?"},
    ]
    out = with_clock(history, "It is now noon.")
    assert out[:3] == history[:3]  # what the prompt cache holds is unchanged
    assert out[3:] == [{"role": "system", "content": "It is now noon."}, history[3]]
    assert len(history) == 4  # the input is not changed


def test_with_no_user_message_the_note_goes_last() -> None:
    out = with_clock([{"role": "system", "content": "style"}], "It is now noon.")
    assert out[-1] == {"role": "system", "content": "It is now noon."}


def test_a_tool_result_turn_keeps_the_note_before_the_question() -> None:
    messages = [
        {"role": "user", "content": "Time in Tokyo?"},
        {"role": "assistant", "content": "", "tool_calls": []},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
    ]
    out = with_clock(messages, "note")
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool"]


def test_the_shared_first_message_is_the_style_and_the_clock_comes_after_the_history() -> None:
    now = datetime(2026, 12, 2, 14, 5, tzinfo=UTC_ZONE)
    recent = [{"role": "user", "content": "Hello."}]
    shared = prompt_messages(_options("Call with Ada."), recent, shared_first=True, now=now)
    assert shared[0] == {"role": "system", "content": SPOKEN_STYLE}
    assert shared[1] == {"role": "system", "content": "Call with Ada."}
    assert shared[2]["content"].startswith("It is now 2:05 PM") and shared[3] == recent[0]
    single = prompt_messages(_options("Call with Ada."), recent, shared_first=False, now=None)
    assert [m["role"] for m in single] == ["system", "user"]
    assert single[0]["content"].startswith("Call with Ada.")
    assert SPOKEN_STYLE in single[0]["content"]
