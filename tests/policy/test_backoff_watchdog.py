"""Pure cores of recovery: backoff with full jitter in a window, and the watchdog's timing
(time is an argument; nothing sleeps)."""

from __future__ import annotations

import random

import pytest

from foreman.policy.backoff import Backoff, RetryWindow
from foreman.policy.watchdog import Watchdog


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    b = Backoff(initial_s=0.25, max_s=4.0)
    assert [b.ceiling(n) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.ceiling(10_000) == 4.0  # no overflow for a long outage


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    b = Backoff(initial_s=0.5, max_s=8.0)
    assert b.delay(3, lambda: 0.0) == 0.0
    assert b.delay(3, lambda: 0.999) == pytest.approx(0.999 * 4.0)
    rng = random.Random(7)
    draws = [b.delay(5, rng.random) for _ in range(2000)]
    assert min(draws) >= 0 and max(draws) < 8.0
    # Spread over the whole range (full jitter), not bunched at the ceiling.
    assert sum(d < 2.0 for d in draws) > 300 and sum(d > 6.0 for d in draws) > 300


@pytest.mark.parametrize("bad", [(0.0, 1.0), (2.0, 1.0), (-1.0, 4.0)])
def test_backoff_refuses_nonsense(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(*bad)


def test_retry_window_stops_when_spent_and_clamps_the_last_wait() -> None:
    w = RetryWindow(Backoff(1.0, 8.0), window_s=5.0, draw=lambda: 0.99)
    w.begin(100.0)
    assert w.next_delay(100.0) == pytest.approx(0.99)
    assert w.next_delay(101.0) == pytest.approx(1.98)
    # Only 0.5 s are left: the attempt still starts inside the window.
    assert w.next_delay(104.5) == pytest.approx(0.5)
    assert w.next_delay(105.0) is None
    assert w.attempts == 3
    w.begin(200.0)  # a new outage starts from the first step again
    assert w.attempts == 0 and w.next_delay(200.0) == pytest.approx(0.99)


def test_watchdog_no_answer_escalates_nudge_reconnect_give_up() -> None:
    dog = Watchdog(response_timeout_s=5.0, stall_timeout_s=3.0, nudges=1)
    dog.reset(0.0)
    assert dog.observe(0.0, events_in=1, owed=True, responding=False) is None
    assert dog.observe(4.9, events_in=2, owed=True, responding=False) is None  # other events
    v = dog.observe(5.0, events_in=2, owed=True, responding=False)
    assert v is not None and v.action == "nudge" and "did not answer within 5 s" in v.reason
    assert dog.observe(9.9, events_in=2, owed=True, responding=False) is None
    v = dog.observe(10.0, events_in=2, owed=True, responding=False)
    assert v is not None and v.action == "reconnect"
    v = dog.observe(15.0, events_in=2, owed=True, responding=False)
    assert v is not None and v.action == "give_up"


def test_watchdog_stall_mid_reply_counts_from_the_last_event() -> None:
    dog = Watchdog(response_timeout_s=5.0, stall_timeout_s=3.0, nudges=0)
    dog.reset(0.0)
    assert dog.observe(0.0, events_in=10, owed=False, responding=True) is None
    assert dog.observe(2.9, events_in=11, owed=False, responding=True) is None  # a delta
    assert dog.observe(5.8, events_in=11, owed=False, responding=True) is None
    v = dog.observe(5.9, events_in=11, owed=False, responding=True)
    assert v is not None and v.action == "reconnect" and "mid-reply" in v.reason


def test_a_finished_reply_resets_the_ladder() -> None:
    dog = Watchdog(response_timeout_s=1.0, stall_timeout_s=1.0, nudges=1)
    dog.reset(0.0)
    dog.observe(0.0, events_in=0, owed=True, responding=False)
    assert dog.observe(1.0, events_in=0, owed=True, responding=False).action == "nudge"  # type: ignore[union-attr]
    dog.observe(1.5, events_in=1, owed=False, responding=True)  # the nudge worked
    assert dog.observe(2.0, events_in=2, owed=False, responding=False) is None  # ...and ended
    dog.observe(10.0, events_in=3, owed=True, responding=False)
    v = dog.observe(11.0, events_in=3, owed=True, responding=False)
    assert v is not None and v.action == "nudge"  # back at the first step


def test_idle_is_never_a_fault() -> None:
    dog = Watchdog(response_timeout_s=1.0, stall_timeout_s=1.0)
    dog.reset(0.0)
    for t in range(0, 3600, 7):  # an hour of nobody talking
        assert dog.observe(float(t), events_in=0, owed=False, responding=False) is None
