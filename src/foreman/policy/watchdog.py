"""`Watchdog`: notices a model that stopped answering. Pure: the I/O layer samples what it
already counts (a counter of received events, whether an answer is owed, whether a reply
streams) at each tick and passes the time; nothing is recorded per audio frame.

Two ways a model goes quiet while the socket stays open:

* an answer is owed (the user's turn was committed, or a reply was asked for) and no reply
  starts within `response_timeout_s`;
* a reply started and nothing more arrives (no delta, no event at all) for `stall_timeout_s`.

A socket that is silent altogether (no pong to a ping) is the WebSocket keepalive's job; it
closes the connection and the reconnect path takes over.

What to do escalates while the model stays stuck: first `nudges` times "nudge" (cancel what
runs and ask again), then "reconnect" (a new session with the conversation replayed), then
"give up" (end the call politely with the reason). A reply that completes resets the ladder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Watchdog", "WatchdogVerdict"]

Action = Literal["nudge", "reconnect", "give_up"]


@dataclass(frozen=True, slots=True)
class WatchdogVerdict:
    action: Action
    reason: str  # one line, for the log and the call's end reason


class Watchdog:
    """Feed `observe()` at every tick; act on the verdict it returns (None: all is well)."""

    __slots__ = (
        "_last_events",
        "_level",
        "_progress_at",
        "_responding",
        "_wait_since",
        "nudges",
        "response_timeout_s",
        "stall_timeout_s",
    )

    def __init__(self, response_timeout_s: float, stall_timeout_s: float, nudges: int = 1) -> None:
        if response_timeout_s <= 0 or stall_timeout_s <= 0 or nudges < 0:
            raise ValueError("watchdog timeouts must be positive and nudges >= 0")
        self.response_timeout_s = response_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.nudges = nudges
        self._wait_since: float | None = None
        self._progress_at = 0.0
        self._last_events = -1
        self._responding = False
        self._level = 0  # verdicts given since the model last finished a reply

    def reset(self, now: float) -> None:
        """A new connection: nothing is owed on it yet, and the clock starts again."""
        self._wait_since = None
        self._progress_at = now
        self._responding = False

    def well(self) -> None:
        """The model showed it is well (a continuous track ended a reply, where no reply
        "completes"): the ladder starts again."""
        self._level = 0

    def observe(
        self, now: float, *, events_in: int, owed: bool, responding: bool
    ) -> WatchdogVerdict | None:
        """`events_in`: a counter of events received (any change is progress); `owed`: an
        answer is owed and no reply has started; `responding`: a reply is streaming."""
        if events_in != self._last_events:
            self._last_events = events_in
            self._progress_at = now
        if self._responding and not responding and not owed:
            self._level = 0  # a reply ran to its end: the model is well
        self._responding = responding
        if responding:
            self._wait_since = None
            if now - self._progress_at >= self.stall_timeout_s:
                return self._verdict(
                    now, f"the model stopped mid-reply (nothing for {self.stall_timeout_s:g} s)"
                )
            return None
        if not owed:
            self._wait_since = None
            return None
        if self._wait_since is None:
            self._wait_since = now
            return None
        if now - self._wait_since >= self.response_timeout_s:
            return self._verdict(
                now, f"the model did not answer within {self.response_timeout_s:g} s"
            )
        return None

    def _verdict(self, now: float, reason: str) -> WatchdogVerdict:
        self._level += 1
        # Each step gets a whole timeout of its own before the next.
        self._wait_since = now
        self._progress_at = now
        if self._level <= self.nudges:
            return WatchdogVerdict("nudge", reason)
        if self._level == self.nudges + 1:
            return WatchdogVerdict("reconnect", reason)
        return WatchdogVerdict("give_up", reason)
