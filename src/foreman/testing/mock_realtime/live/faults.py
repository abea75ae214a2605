"""The `Faults` of the mock server as one GPT-Live connection applies them: drop the socket
after a number of server events or at a client event, go silent (a hung service), and
expire the session early (`expires_at` close, then `session.closed` reason "expired")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from foreman.testing.mock_realtime.faults import Faults

Action = Literal["drop", "freeze"]


@dataclass(frozen=True, slots=True)
class LiveFaults:
    drop_after: int | None = None
    freeze_after: int | None = None
    drop_on: tuple[str, str] | None = None
    expires_in_s: float | None = None

    @classmethod
    def of(cls, faults: Faults, connection: int) -> LiveFaults:
        """What applies to the `connection`-th Live connection (0-based)."""
        applies = faults.applies_to(connection)
        return cls(
            drop_after=faults.drop_point(connection),
            freeze_after=faults.freeze_point(connection),
            drop_on=faults.drop_on_client_event if applies else None,
            expires_in_s=faults.session_time_limit_s,
        )

    def after_send(self, sent: int) -> Action | None:
        """After the `sent`-th server event: what happens to the connection now."""
        if self.drop_after is not None and sent >= self.drop_after:
            return "drop"
        if self.freeze_after is not None and sent >= self.freeze_after:
            return "freeze"
        return None

    def drops_on(self, kind: object, message: str) -> bool:
        return self.drop_on is not None and kind == self.drop_on[0] and self.drop_on[1] in message

    def expires_at(self, now: float) -> int | None:
        """`expires_at` for a session started at `now` (Unix seconds; None: the default)."""
        return None if self.expires_in_s is None else math.ceil(now + self.expires_in_s)
