"""Replies inferred from GPT-Live's continuous track (pure): speech starts a reply, track
silence past the hangover ends it, silence outside a reply is filler, and `AssistantIdle`
comes once per busy -> idle change, after delegated work and a grace period for the answer."""

from __future__ import annotations

from foreman.audio.convert import build_plan
from foreman.audio.formats import PCM16_24K, PCMU_8K
from foreman.backends import interface as b
from foreman.backends.live_replies import TrackReplies
from foreman.testing.speech import synthesize

CHUNK = 800  # 100 ms of µ-law
SILENCE = b"\xff" * CHUNK


def speech_ulaw(text: str) -> bytes:
    plan = build_plan(PCM16_24K, PCMU_8K)
    return plan.convert(synthesize(text, 24000)) + plan.flush()


def feed(replies: TrackReplies, audio: bytes) -> list[b.BackendEvent]:
    out: list[b.BackendEvent] = []
    for i in range(0, len(audio), CHUNK):
        out += replies.audio(audio[i : i + CHUNK])
    return out


def kinds(events: list[b.BackendEvent]) -> list[str]:
    return [type(e).__name__ for e in events if not isinstance(e, b.AssistantAudio)]


def test_silence_alone_is_filler_and_never_busy() -> None:
    replies = TrackReplies(PCMU_8K)
    out = feed(replies, SILENCE * 20)
    assert all(e == b.AssistantAudio(SILENCE, "", "") for e in out)
    assert not replies.busy


def test_speech_is_one_reply_ending_after_the_hangover_then_idle() -> None:
    replies = TrackReplies(PCMU_8K, hangover_ms=700)
    words = speech_ulaw("Hello there, how are you today?")
    out = feed(replies, SILENCE * 3 + words + SILENCE * 12)
    assert kinds(out) == ["ReplyStarted", "SegmentEnded", "ReplyEnded", "AssistantIdle"]
    reply = next(e for e in out if isinstance(e, b.ReplyStarted)).reply
    audio = [e for e in out if isinstance(e, b.AssistantAudio)]
    in_reply = [e for e in audio if e.reply == reply]
    assert all(e.segment == reply for e in in_reply)
    # the reply holds the speech and at most the hangover of trailing silence
    assert len(words) <= sum(len(e.audio) for e in in_reply) <= len(words) + CHUNK * 8
    assert audio[-1].reply == "" and not replies.busy


def test_a_transcript_piece_before_the_audio_starts_the_reply() -> None:
    replies = TrackReplies(PCMU_8K)
    out = replies.transcript("Hi", 100, 300)
    assert isinstance(out[0], b.ReplyStarted)
    assert out[1] == b.TranscriptSegment("assistant", "Hi", False, 100, 300, reply=out[0].reply)
    assert replies.busy


def test_idle_waits_for_delegated_work_and_the_answer_grace() -> None:
    replies = TrackReplies(PCMU_8K, hangover_ms=300, answer_grace_ms=1000)
    assert replies.work(True) == []
    out = feed(replies, speech_ulaw("Let me check.") + SILENCE * 6)
    assert "AssistantIdle" not in kinds(out)  # the work is still running
    assert replies.work(False) == [b.AssistantIdle()]
    # a finished delegation's result is the model's to say: busy for the grace period
    replies.expect_speech()
    assert replies.busy
    out = feed(replies, SILENCE * 9)
    assert "AssistantIdle" not in kinds(out)
    assert kinds(feed(replies, SILENCE)) == ["AssistantIdle"]


def test_an_expected_answer_that_comes_cancels_the_grace() -> None:
    replies = TrackReplies(PCMU_8K, hangover_ms=300, answer_grace_ms=5000)
    replies.expect_speech()
    out = feed(replies, speech_ulaw("It is noon.") + SILENCE * 4)
    assert kinds(out) == ["ReplyStarted", "SegmentEnded", "ReplyEnded", "AssistantIdle"]
