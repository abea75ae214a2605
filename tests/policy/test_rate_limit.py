"""Token buckets per client, without sockets or clocks: the time is an argument."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foreman.policy.rate_limit import RateLimiter


def test_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=5)
    assert [limiter.take("a", 0.0) for _ in range(5)] == [0.0] * 5
    assert limiter.take("a", 0.0) == pytest.approx(0.5)  # one token every 0.5 s
    assert limiter.take("a", 0.25) == pytest.approx(0.25)  # refused: no token taken
    assert limiter.take("a", 0.5) == 0.0
    assert limiter.take("a", 0.5) > 0
    assert limiter.refused == 3


def test_clients_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    assert limiter.take("b", 0.0) == 0.0


def test_an_idle_client_refills_only_to_the_burst() -> None:
    limiter = RateLimiter(rate_per_s=10.0, burst=3)
    limiter.take("a", 0.0)
    assert [limiter.take("a", 3600.0) for _ in range(4)][-1] > 0  # three, not 36,000


def test_memory_is_bounded_and_the_idlest_client_is_forgotten() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_clients=100)
    limiter.take("busy", 0.0)
    for i in range(10_000):  # an address spray
        limiter.take(f"10.0.{i // 256}.{i % 256}", 0.0)
        if i % 50 == 0:
            limiter.take("busy", 0.0)  # seen recently: kept, and still empty
    assert len(limiter) == 100
    assert limiter.take("busy", 0.0) > 0


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (1.0, 1), (1.01, 2), (59.5, 60)])
def test_retry_after_rounds_up_to_whole_seconds(wait: float, header: int) -> None:
    assert RateLimiter.retry_after(wait) == header


@pytest.mark.parametrize(
    ("rate", "burst", "clients"),
    [(0.0, 1, 1), (-1.0, 1, 1), (float("inf"), 1, 1), (1.0, 0, 1), (1.0, 1, 0)],
)
def test_nonsense_settings_are_refused(rate: float, burst: int, clients: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst, max_clients=clients)


@given(
    st.floats(0.1, 100.0),
    st.integers(1, 50),
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=200),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    limiter = RateLimiter(rate, burst)
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        wait = limiter.take("a", now)
        granted += wait == 0.0
        assert wait >= 0.0
    assert granted <= burst + rate * now + 1e-6


@given(st.floats(0.1, 100.0), st.integers(1, 50), st.floats(0.0, 5.0))
def test_a_client_that_waits_as_told_is_served(rate: float, burst: int, later: float) -> None:
    limiter = RateLimiter(rate, burst)
    for _ in range(burst):
        limiter.take("a", 0.0)
    wait = limiter.take("a", later)
    if wait > 0:
        assert limiter.take("a", later + wait * (1 + 1e-6)) == 0.0
