"""The sans-I/O decisions of moving a GPT-Live call to a new session: what is worth a
reconnect, when to roll over before `expires_at`, what of the caller's held audio is sent
on, what the new session is seeded with, and that each carried call is answered once."""

from __future__ import annotations

import base64

import pytest
from test_replies import SILENCE, feed, speech_ulaw

from foreman.audio.formats import PCMU_8K
from foreman.backends import interface as b
from foreman.backends.live_replies import TrackReplies
from foreman.policy.watchdog import Watchdog
from foreman.protocols.live.carryover import (
    CarriedCall,
    CarriedCalls,
    ConversationDigest,
    result_note,
    resume_instruction,
)
from foreman.protocols.live.lifecycle import HeldInput, RolloverSchedule, reconnect_worthwhile
from foreman.protocols.live.session_config import LiveSessionOptions, build_session_config


def b64(chunk: bytes) -> str:
    return base64.b64encode(chunk).decode("ascii")


# --- reconnect or not --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("close_code", "error_code", "worth"),
    [
        (None, None, True),  # dropped without a close frame
        (1006, None, True),
        (1000, None, True),  # a normal close: the session ended, a new one can go on
        (1011, None, True),  # the service's internal error
        (1008, None, False),  # policy violation
        (3000, None, False),  # the application closed it on purpose (a bad key)
        (None, "invalid_api_key", False),
        (None, "model_not_found", False),
        (None, "http_401", False),
        (None, "format_mismatch", False),
        (None, "timeout", True),
        (None, "refused", True),
        (None, "closed", True),
    ],
)
def test_what_is_worth_a_reconnect(close_code: int | None, error_code: str | None, worth: bool):
    assert reconnect_worthwhile(close_code=close_code, error_code=error_code) is worth


# --- rollover ----------------------------------------------------------------------------------
def test_a_standby_is_prepared_a_margin_before_expiry_and_retried_after_a_failure() -> None:
    schedule = RolloverSchedule(60.0, retry_s=30.0)
    schedule.started(expires_at=10_000.0, now=6_400.0)
    assert not schedule.should_prepare(9_939.0)
    assert schedule.should_prepare(9_940.0)
    schedule.preparing()
    assert not schedule.should_prepare(9_941.0)  # once
    schedule.failed(9_945.0)
    assert not schedule.should_prepare(9_974.0) and schedule.should_prepare(9_975.0)
    schedule.preparing()
    schedule.failed(9_980.0)  # a retry would come after expiry: the expiry reconnects instead
    assert not schedule.should_prepare(10_100.0)


def test_a_session_already_inside_its_margin_rolls_over_after_a_while_not_at_once() -> None:
    schedule = RolloverSchedule(60.0, min_age_s=1.0)
    assert schedule.started(expires_at=2_000.0, now=1_000.0)
    assert not schedule.started(expires_at=1_030.0, now=1_000.0)  # inside: said so
    assert not schedule.should_prepare(1_000.5) and schedule.should_prepare(1_001.0)
    # A clock far ahead of the service's: every session seems about to expire. By default
    # a session serves at least half the margin before it is replaced.
    skewed = RolloverSchedule(60.0)
    assert not skewed.started(expires_at=900.0, now=1_000.0)
    assert not skewed.should_prepare(1_029.0) and skewed.should_prepare(1_030.0)
    assert schedule.started(expires_at=None, now=1_000.0)  # no expiry named: never
    assert not schedule.should_prepare(1e12)
    with pytest.raises(ValueError):
        RolloverSchedule(0)


# --- held audio --------------------------------------------------------------------------------
def test_held_audio_keeps_the_newest_200_ms_and_notices_speech() -> None:
    held = HeldInput(PCMU_8K)
    for _ in range(50):  # one second of silence, 20 ms frames
        held.add(b64(SILENCE[:160]))
    assert held.held_ms == 200 and held.dropped_ms == 800
    chunks, spoke = held.take()
    assert len(chunks) == 10 and not spoke  # the newest 200 ms, oldest first
    assert held.held_ms == 0
    speech = speech_ulaw("Can you hear me now?")
    for i in range(0, len(speech), 160):
        held.add(b64(speech[i : i + 160]))
    held.add(b64(SILENCE[:160]))
    chunks, spoke = held.take()
    assert spoke and b"".join(base64.b64decode(c) for c in chunks)[-160:] == SILENCE[:160]
    assert held.take() == ([], False)  # taken once


# --- the digest --------------------------------------------------------------------------------
def test_the_digest_groups_pieces_and_seeds_the_next_session_newest_kept() -> None:
    digest = ConversationDigest(4, history=(("user", "Earlier hello"), ("system", "A note")))
    digest.user_piece("What is ")
    digest.user_piece("the time?")
    digest.assistant_piece("Let me ")
    digest.assistant_piece("check.")
    digest.reply_ended()
    digest.tool_call("get_time", "{}")
    digest.tool_output("get_time", '{"time": "noon"}')
    assert digest.seed() == (
        ("user", "What is the time?"),
        ("assistant", "Let me check."),
        ("system", "You delegated a task: get_time({})."),
        ("system", 'The task get_time returned: {"time": "noon"}'),
    )
    seq = digest.last_seq
    assert digest.since(seq) == ""
    digest.user_piece("Thanks")  # still being spoken: in the seed and in what was missed
    assert digest.seed()[-1] == ("user", "Thanks")
    assert digest.since(seq) == "user: Thanks"
    digest.typed("And the date?")
    assert digest.since(seq) == "user: Thanks\nuser: And the date?"


def test_the_seed_is_a_valid_session_input_and_long_messages_keep_their_end() -> None:
    digest = ConversationDigest(10)
    digest.assistant_piece("word " * 1000 + "the end.")
    (seed,) = digest.seed()
    assert len(seed[1]) <= 1200 and seed[1].endswith("the end.")
    digest.note("The caller pressed 5.")
    config = build_session_config(
        LiveSessionOptions(
            "gpt-live-1", "Be brief.", PCMU_8K, "marin", "gpt-6", history=seed_of(digest)
        )
    )
    assert [item["role"] for item in config["input"]] == ["assistant", "developer"]


def seed_of(digest: ConversationDigest) -> list[tuple[str, str]]:
    return list(digest.seed())


# --- carried calls -----------------------------------------------------------------------------
def test_a_carried_call_is_handed_out_once() -> None:
    calls = CarriedCalls()
    sms = CarriedCall("call_1", "send_sms", '{"to": "Ann"}')
    calls.carry([sms])
    calls.carry([sms])  # carried again by a second loss: still one
    assert len(calls) == 1 and calls.names() == ["send_sms"]
    assert calls.take("call_1") == sms
    assert calls.take("call_1") is None and calls.take("call_2") is None
    assert "send_sms" in result_note(sms, '{"ok": true}') and '{"ok": true}' in result_note(
        sms, '{"ok": true}'
    )


def test_what_a_new_session_is_asked_first() -> None:
    assert resume_instruction(cut_reply=False, lost_speech=False, waiting=[]) is None
    repeat = resume_instruction(cut_reply=True, lost_speech=True, waiting=[])
    assert repeat is not None and "repeat" in repeat and "Continue" not in repeat
    going_on = resume_instruction(cut_reply=True, lost_speech=False, waiting=["send_sms"])
    assert going_on is not None and "Continue" in going_on and "send_sms" in going_on


# --- the track and the watchdog ----------------------------------------------------------------
def test_a_lost_session_ends_the_running_reply_incomplete_then_idle() -> None:
    replies = TrackReplies(PCMU_8K)
    feed(replies, speech_ulaw("Hello there, how are you?")[:4000])
    reply = replies.reply
    assert reply is not None
    out = replies.lost()
    assert out == [
        b.SegmentEnded(reply),
        b.ReplyEnded(reply, "incomplete", "connection lost"),
        b.AssistantIdle(),
    ]
    assert not replies.busy and replies.lost() == []


def test_a_reply_run_to_its_end_restarts_the_watchdog_ladder() -> None:
    dog = Watchdog(10.0, 2.0, nudges=0)
    dog.observe(0.0, events_in=1, owed=False, responding=True)
    first = dog.observe(2.0, events_in=1, owed=False, responding=True)
    assert first is not None and first.action == "reconnect"
    dog.well()
    dog.reset(3.0)
    again = dog.observe(5.0, events_in=1, owed=False, responding=True)
    assert again is not None and again.action == "reconnect"  # not give_up
    last = dog.observe(7.0, events_in=1, owed=False, responding=True)
    assert last is not None and last.action == "give_up"
