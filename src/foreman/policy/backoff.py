"""When to try again after a lost connection: exponential backoff with full jitter, inside a
total window. Pure: time is an argument and randomness is injected.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads the retries of
many calls that lost the same service at the same moment, so they do not all come back
together (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/). The
window bounds the whole outage a call sits through: once it is spent, the caller is told
goodbye instead of waiting on silence.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "RetryWindow"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt `n` (0-based): uniform in [0, min(max_s, initial_s * 2**n)].
    The first attempt (n = 0) may go at once: a dropped socket is usually a blip."""

    initial_s: float = 0.25
    max_s: float = 4.0

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")

    def ceiling(self, attempt: int) -> float:
        # 2**n overflows nothing here: the exponent is capped once the ceiling is reached.
        return min(self.max_s, self.initial_s * 2.0 ** min(attempt, 32))

    def delay(self, attempt: int, draw: Callable[[], float]) -> float:
        """`draw()` returns a float in [0, 1) (e.g. `random.random`)."""
        return draw() * self.ceiling(attempt)


class RetryWindow:
    """One outage: attempts and the time they may take. `begin(now)`, then before every
    attempt `next_delay(now)`: how long to wait, or None when the window is spent."""

    __slots__ = ("_draw", "attempts", "backoff", "deadline", "started_at", "window_s")

    def __init__(
        self,
        backoff: Backoff,
        window_s: float,
        *,
        draw: Callable[[], float] = random.random,
    ) -> None:
        if window_s <= 0:
            raise ValueError("the retry window must be positive")
        self.backoff = backoff
        self.window_s = window_s
        self._draw = draw
        self.attempts = 0
        self.started_at = 0.0
        self.deadline = 0.0

    def begin(self, now: float) -> None:
        self.attempts = 0
        self.started_at = now
        self.deadline = now + self.window_s

    def next_delay(self, now: float) -> float | None:
        """The wait before the next attempt (clamped so the attempt starts inside the
        window), or None: the window is spent, stop trying."""
        left = self.deadline - now
        if left <= 0:
            return None
        delay = self.backoff.delay(self.attempts, self._draw)
        self.attempts += 1
        return min(delay, left)

    def remaining(self, now: float) -> float:
        return max(0.0, self.deadline - now)
