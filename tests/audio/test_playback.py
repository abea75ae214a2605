"""PlaybackTracker against the Twilio mark/clear semantics
(https://www.twilio.com/docs/voice/media-streams/websocket-messages)."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foreman.audio.formats import PCM16_24K, PCMU_8K
from foreman.audio.playback import PlaybackTracker, Truncation, parse_mark_name

DELTA = 1600  # 200 ms of µ-law


class FakeTwilio:
    """Queues media and marks like Twilio: a mark echoes once everything before it played;
    `clear` drops queued audio and echoes every pending mark at once."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, int | str]] = deque()

    def media(self, nbytes: int) -> None:
        self.queue.append(("media", nbytes))

    def mark(self, name: str) -> None:
        self.queue.append(("mark", name))

    def play(self, nbytes: int) -> list[str]:
        """Play `nbytes` of audio; return the marks that echo."""
        echoes: list[str] = []
        while self.queue:
            kind, val = self.queue[0]
            if kind == "mark":
                echoes.append(str(val))
                self.queue.popleft()
                continue
            assert isinstance(val, int)
            if nbytes <= 0:
                break
            take = min(val, nbytes)
            nbytes -= take
            if take == val:
                self.queue.popleft()
            else:
                self.queue[0] = ("media", val - take)
        return echoes

    def clear(self) -> list[str]:
        echoes = [str(v) for k, v in self.queue if k == "mark"]
        self.queue.clear()
        return echoes


def _send(t: PlaybackTracker, tw: FakeTwilio, item: str, n: int = DELTA, ci: int = 0) -> str:
    mark = t.sent(item, ci, n)
    tw.media(n)
    tw.mark(mark.name)
    return mark.name


def test_mark_bookkeeping() -> None:
    t = PlaybackTracker(PCMU_8K)
    names = [t.sent("item_A", 0, DELTA).name for _ in range(3)]
    assert len(set(names)) == 3 and all(names)
    assert [parse_mark_name(n).cumulative_ms for n in names] == [200, 400, 600]  # type: ignore[union-attr]
    assert t.sent_ms("item_A") == 600
    assert t.heard_ms("item_A") == 0
    assert t.outstanding_marks == 3
    assert t.playing


def test_barge_in_truncates_at_heard_and_drops_clear_echoes() -> None:
    t, tw = PlaybackTracker(PCMU_8K), FakeTwilio()
    for _ in range(3):
        _send(t, tw, "item_A")
    (first,) = tw.play(DELTA)
    assert t.acknowledged(first)
    assert t.heard_ms("item_A") == 200
    # speech_started -> truncate at what marks confirmed
    trunc = t.interrupt()
    assert trunc == Truncation("item_A", 0, 200)
    assert not t.playing
    assert t.outstanding_marks == 0
    # the clear flushes marks 2 and 3; they are dropped, not played
    for name in tw.clear():
        assert t.acknowledged(name) is False
    assert t.heard_ms("item_A") == 200
    assert t.dropped_marks == 2 and t.dropped_acks == 2
    # nothing left to interrupt
    assert t.interrupt() is None


def test_slack_never_exceeds_sent() -> None:
    t, tw = PlaybackTracker(PCMU_8K), FakeTwilio()
    _send(t, tw, "item_A")
    _send(t, tw, "item_A", 400)  # 50 ms
    t.acknowledged(tw.play(DELTA)[0])
    assert t.unfinished(slack_ms=50) == [Truncation("item_A", 0, 250)]
    assert t.unfinished(slack_ms=500) == [Truncation("item_A", 0, 250)]
    assert t.interrupt(slack_ms=20) == Truncation("item_A", 0, 220)


def test_interrupt_after_playback_finished() -> None:
    t, tw = PlaybackTracker(PCMU_8K), FakeTwilio()
    for _ in range(3):
        _send(t, tw, "item_A")
    done = t.sent("item_A", 0, 0)  # the "done" mark after output_audio.done
    tw.mark(done.name)
    for name in tw.play(3 * DELTA):
        assert t.acknowledged(name)
    assert t.heard_ms("item_A") == t.sent_ms("item_A") == 600
    assert not t.playing
    assert t.interrupt() is None


def test_interrupt_with_nothing_sent() -> None:
    t = PlaybackTracker(PCMU_8K)
    assert not t.playing
    assert t.interrupt() is None
    assert t.generation == 1


def test_second_response_after_interrupt() -> None:
    t, tw = PlaybackTracker(PCMU_8K), FakeTwilio()
    _send(t, tw, "item_A")
    _send(t, tw, "item_A")
    gen0 = t.generation
    t.interrupt()
    for name in tw.clear():
        t.acknowledged(name)
    b = t.sent("item_B", 0, DELTA)
    assert b.generation == gen0 + 1
    assert parse_mark_name(b.name) is not None
    assert parse_mark_name(b.name).generation == gen0 + 1  # type: ignore[union-attr]
    tw.media(DELTA)
    tw.mark(b.name)
    assert tw.play(DELTA) == [b.name]
    assert t.acknowledged(b.name)
    assert t.heard_ms("item_B") == 200
    assert t.heard_ms("item_A") == 0


def test_later_echo_settles_earlier_marks() -> None:
    t = PlaybackTracker(PCMU_8K)
    m1 = t.sent("a", 0, DELTA)
    t.sent("b", 0, DELTA)
    m3 = t.sent("b", 0, DELTA)
    assert t.acknowledged(m3.name)
    assert t.heard_ms("a") == 200 and t.heard_ms("b") == 400
    assert t.outstanding_marks == 0
    assert not t.acknowledged(m1.name)  # already settled: a duplicate echo changes nothing
    assert t.heard_ms("a") == 200


def test_unknown_and_foreign_marks_are_ignored() -> None:
    t = PlaybackTracker(PCMU_8K)
    t.sent("a", 0, DELTA)
    assert not t.acknowledged("something-else")
    assert not t.acknowledged("")
    assert t.heard_ms("a") == 0
    assert t.ignored_acks == 2 and t.dropped_acks == 0
    assert parse_mark_name("something-else") is None
    assert parse_mark_name("a:x:g1:m2") is None


def test_item_ids_with_colons_round_trip() -> None:
    t = PlaybackTracker(PCMU_8K)
    m = t.sent("item:with:colons", 2, 800)
    parsed = parse_mark_name(m.name)
    assert parsed is not None
    assert (parsed.item_id, parsed.cumulative_ms, parsed.generation) == ("item:with:colons", 100, 0)


def test_first_unfinished_item_is_truncated_and_later_ones_at_zero() -> None:
    t, tw = PlaybackTracker(PCMU_8K), FakeTwilio()
    _send(t, tw, "a")
    _send(t, tw, "b")
    _send(t, tw, "c")
    for n in tw.play(DELTA + 800):
        t.acknowledged(n)
    assert t.unfinished() == [Truncation("b", 0, 0), Truncation("c", 0, 0)]
    assert t.interrupt() == Truncation("b", 0, 0)


def test_consumed_speaker_path() -> None:
    t = PlaybackTracker(PCM16_24K)
    t.sent("a", 0, 48000)  # 1 s at 24 kHz PCM16
    t.consumed("a", 0, 960 * 10)  # ten 20 ms callbacks
    assert t.heard_ms("a") == 200
    assert t.playing
    t.consumed("a", 0, 10**9)
    assert t.heard_ms("a") == t.sent_ms("a") == 1000
    assert not t.playing
    t.consumed("unknown", 0, 100)  # ignored
    assert t.heard_ms("unknown") == 0


def test_forget() -> None:
    t = PlaybackTracker(PCMU_8K)
    m = t.sent("a", 0, DELTA)
    t.forget("a")
    assert t.sent_ms("a") == 0
    assert t.outstanding_marks == 0
    assert not t.acknowledged(m.name)
    assert not t.playing


def test_negative_bytes_rejected() -> None:
    with pytest.raises(ValueError, match="nbytes"):
        PlaybackTracker(PCMU_8K).sent("a", 0, -1)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(["a", "b", "c"]), st.integers(0, 2400)),
        st.tuples(st.just("play"), st.just(""), st.integers(0, 4000)),
        st.tuples(st.just("clear"), st.just(""), st.just(0)),
        st.tuples(st.just("interrupt"), st.just(""), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_never_reports_more_than_played_or_sent(seq: list[tuple[str, str, int]]) -> None:
    """Against the fake Twilio: heard <= actually played <= sent, for any interleaving."""
    t, tw = PlaybackTracker(PCMU_8K), FakeTwilio()
    played: dict[str, int] = {}  # bytes truly played per item (ground truth)
    owner: deque[tuple[str, int]] = deque()  # which item each queued media belongs to
    for op, item, n in seq:
        if op == "send" and n:
            _send(t, tw, item, n)
            owner.append((item, n))
        elif op == "play":
            budget = n
            while budget and owner:
                it, left = owner[0]
                take = min(left, budget)
                played[it] = played.get(it, 0) + take
                budget -= take
                owner[0] = (it, left - take)
                if take == left:
                    owner.popleft()
            for name in tw.play(n):
                assert t.acknowledged(name)
        elif op in ("clear", "interrupt"):
            before = {k: t.heard_ms(k) for k in "abc"}
            trunc = t.interrupt() if op == "interrupt" else (t.clear(), None)[1]
            if trunc is not None:
                assert trunc.audio_end_ms == before[trunc.item_id]
                assert trunc.audio_end_ms <= t.sent_ms(trunc.item_id)
            for name in tw.clear():
                assert not t.acknowledged(name)
            owner.clear()
            assert not t.playing
        for k in "abc":
            assert t.heard_ms(k) <= played.get(k, 0) // 8 <= t.sent_ms(k)


def test_more_audio_for_a_cleared_item_never_counts_past_the_gap() -> None:
    t, tw = PlaybackTracker(PCMU_8K), FakeTwilio()
    _send(t, tw, "a")
    t.acknowledged(tw.play(DELTA)[0])  # 200 ms heard
    _send(t, tw, "a")  # 200 ms more, then dropped by a clear
    t.clear()
    for name in tw.clear():
        t.acknowledged(name)
    _send(t, tw, "a")  # a buggy session keeps sending the same item
    for name in tw.play(DELTA):
        assert t.acknowledged(name)
    assert t.sent_ms("a") == 600
    assert t.heard_ms("a") == 200  # the listener has a gap at 200-400 ms
    assert not t.playing
