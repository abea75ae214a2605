"""Token buckets per client, decided without I/O: time is passed in.

Each client (an address) has a bucket of `burst` tokens that refills at `rate_per_s`; a
request takes one, and a client whose bucket is empty is told how long until the next one
is there (the `Retry-After` of a 429, https://www.rfc-editor.org/rfc/rfc6585#section-4).
At most `max_clients` buckets are kept: the least recently seen are forgotten first, which
costs nothing, because a forgotten bucket comes back full, as a bucket idle that long
would have refilled anyway, unless clients outnumber `max_clients` at once.
"""

from __future__ import annotations

import math
from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    """`wait = limiter.take(client, now)`: 0.0 means go (a token was taken); otherwise
    refuse the request and say `retry_after(wait)` seconds."""

    def __init__(self, rate_per_s: float, burst: int, *, max_clients: int = 10_000) -> None:
        if not rate_per_s > 0 or not math.isfinite(rate_per_s):
            raise ValueError("rate_per_s must be a positive number")
        if burst < 1 or max_clients < 1:
            raise ValueError("burst and max_clients must be at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self.refused = 0

    def __len__(self) -> int:
        """Clients remembered."""
        return len(self._buckets)

    def take(self, client: str, now: float) -> float:
        """Take a token for `client` at `now` (seconds, any monotonic clock). Returns 0.0 when
        the request may go, else the seconds until a token will be there (none is taken)."""
        tokens, at = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate_per_s)
        if tokens >= 1.0:
            self._remember(client, tokens - 1.0, now)
            return 0.0
        self._remember(client, tokens, now)
        self.refused += 1
        return (1.0 - tokens) / self.rate_per_s

    def _remember(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)  # newest last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    @staticmethod
    def retry_after(wait_s: float) -> int:
        """`Retry-After` is whole seconds; round up, so a client that obeys it is served."""
        return max(1, math.ceil(wait_s))
