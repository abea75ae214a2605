"""What the offline engine's model is sent: the clock note, the shared first message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from foreman.audio.formats import AudioFormat, Encoding
from foreman.backends import local_prompt
from foreman.backends.interface import BackendOptions
from foreman.backends.local_prompt import (
    SPOKEN_STYLE,
    ModelMessages,
    clock_note,
    prompt_messages,
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


def test_the_shared_first_message_is_the_style_alone() -> None:
    recent = [{"role": "user", "content": "Hello."}]
    shared = prompt_messages(_options("Call with Ada."), recent, shared_first=True)
    assert shared[0] == {"role": "system", "content": SPOKEN_STYLE}
    assert shared[1:] == [{"role": "system", "content": "Call with Ada."}, recent[0]]
    single = prompt_messages(_options("Call with Ada."), recent, shared_first=False)
    assert [m["role"] for m in single] == ["system", "user"]
    assert single[0]["content"].startswith("Call with Ada.")
    assert SPOKEN_STYLE in single[0]["content"]


def test_the_clock_is_told_into_the_conversation_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [datetime(2026, 12, 2, 14, 5, 10, tzinfo=UTC)]
    monkeypatch.setattr(local_prompt, "_now", lambda: now[0])
    chat = ModelMessages(_options(), clock=True)
    chat.tell_the_time()
    chat.messages.append({"role": "user", "content": "What time is it?"})
    chat.tell_the_time()  # the same minute: nothing more
    now[0] += timedelta(seconds=60)
    chat.tell_the_time()
    notes = [m["content"] for m in chat.messages if m["role"] == "system"]
    assert notes == [clock_note(now[0] - timedelta(seconds=60)), clock_note(now[0])]
    assert chat.prompt()[-3:] == chat.messages  # told where it was, then left there


def test_without_the_clock_nothing_is_told() -> None:
    chat = ModelMessages(_options(), clock=False)
    chat.tell_the_time()
    assert chat.messages == []
