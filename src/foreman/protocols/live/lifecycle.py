"""When a GPT-Live session is replaced, and what goes with it, sans I/O.

* `reconnect_worthwhile`: after a lost socket or a failed attempt to open a session, is
  trying again worthwhile? An answer about the account or the request (a bad key, no
  quota, an unknown model, a format the service refuses) will not change by retrying.
* `RolloverSchedule`: GPT-Live documents no fixed session length, but `session.started`
  says when the session expires (`expires_at`, Unix seconds) and at that moment the
  session closes with reason "expired". A margin before it, a standby session is opened;
  it takes over at the first pause. A failed attempt is retried a while later. A session
  that starts already inside its margin (a short session, or a clock ahead of the
  service's) rolls over no sooner than `min_age_s` after it started (half the margin by
  default): a wrong clock costs a new session now and then, never a storm of them.
* `HeldInput`: the caller's audio while no session is up. Live's timeline advances with
  the input: audio sent faster than real time after a reconnect would put the new
  session's output as far ahead of real time, and the phone path keeps at most 200 ms
  queued (`phone/bridge.lead_ms`). So only the newest `resume_ms` is sent on; what came
  before is dropped (counted), and whether any of it was speech decides whether the model
  asks the caller to repeat.

Reference: https://developers.openai.com/api/docs/guides/live.
"""

from __future__ import annotations

import binascii
from typing import Final

from foreman.audio.formats import AudioFormat
from foreman.audio.levels import peak
from foreman.protocols.realtime.backlog import AudioBacklog

__all__ = ["FATAL_CODES", "HeldInput", "RolloverSchedule", "reconnect_worthwhile"]

FATAL_CODES: Final = frozenset(
    {
        # Answers of the service (`error.code`).
        "invalid_api_key",
        "insufficient_quota",
        "model_not_found",
        "invalid_model",
        "unknown_parameter",
        "invalid_value",
        "missing_required_parameter",
        # Answers of the connection attempt (`BackendError.code` from `io.realtime_ws`).
        "http_400",
        "http_401",
        "http_403",
        "http_404",
        "bad_url",
        "dns",
        "format",
        "format_mismatch",
    }
)
_FATAL_CLOSE_CODES: Final = frozenset({1002, 1003, 1007, 1008, 1009, 1010})
RESUME_AUDIO_MS: Final = 200  # the phone path's queue bound on a continuous backend
SPEECH_PEAK: Final = 1000  # of 32767 (about -30 dBFS): held audio this loud was speech


def reconnect_worthwhile(*, close_code: int | None = None, error_code: str | None = None) -> bool:
    """`close_code`: how the socket ended (None: dropped without a close frame);
    `error_code`: a startup error or a `BackendError.code`."""
    if error_code is not None and error_code in FATAL_CODES:
        return False
    if close_code is None:
        return True
    # 3000-4999: the application closed it on purpose (e.g. 3000 for a bad key).
    return close_code not in _FATAL_CLOSE_CODES and not 3000 <= close_code <= 4999


class RolloverSchedule:
    """Feed `started(expires_at, now)` for each new session (wall-clock Unix seconds),
    then ask `should_prepare(now)` at every tick."""

    __slots__ = ("_next_try", "expires_at", "margin_s", "min_age_s", "retry_s")

    def __init__(
        self, margin_s: float, *, retry_s: float = 30.0, min_age_s: float | None = None
    ) -> None:
        if margin_s <= 0 or retry_s <= 0 or (min_age_s is not None and min_age_s < 0):
            raise ValueError("rollover margin and retry must be positive")
        self.margin_s = margin_s
        self.retry_s = retry_s
        self.min_age_s = margin_s / 2 if min_age_s is None else min_age_s
        self.expires_at: float | None = None
        self._next_try: float | None = None

    def started(self, expires_at: float | None, now: float) -> bool:
        """A new session took over; False when it starts already inside its margin."""
        self.expires_at = expires_at
        self._next_try = None
        if expires_at is None:
            return True
        self._next_try = max(expires_at - self.margin_s, now + self.min_age_s)
        return expires_at - now > self.margin_s

    def should_prepare(self, now: float) -> bool:
        """Time to open a standby session (once: call `preparing` or `failed` next)."""
        return self._next_try is not None and now >= self._next_try

    def preparing(self) -> None:
        self._next_try = None

    def failed(self, now: float) -> None:
        """No standby session could be opened: try again later, while it still helps."""
        if self.expires_at is not None and now + self.retry_s < self.expires_at:
            self._next_try = now + self.retry_s

    def left_s(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now


class HeldInput:
    """The user's audio (base64, in `fmt`) while disconnected: the newest `resume_ms` kept
    to send on, the rest dropped and counted, and whether any of it carried speech."""

    __slots__ = ("_backlog", "_fmt", "_threshold", "heard_speech")

    def __init__(
        self, fmt: AudioFormat, *, resume_ms: int = RESUME_AUDIO_MS, threshold: int = SPEECH_PEAK
    ) -> None:
        if resume_ms < 0:
            raise ValueError("resume_ms must be >= 0")
        self._fmt = fmt
        self._backlog = AudioBacklog(fmt.bytes_for_ms(resume_ms))
        self._threshold = threshold
        self.heard_speech = False

    @property
    def dropped_ms(self) -> int:
        return int(self._fmt.ms_for_bytes(self._backlog.dropped_bytes))

    @property
    def held_ms(self) -> int:
        return int(self._fmt.ms_for_bytes(self._backlog.bytes))

    def add(self, audio_b64: str) -> None:
        if not self.heard_speech:
            try:
                chunk = binascii.a2b_base64(audio_b64)
            except (binascii.Error, ValueError):
                return  # not audio: nothing to send on
            self.heard_speech = peak(chunk, self._fmt) >= self._threshold
        self._backlog.add(audio_b64)

    def take(self) -> tuple[list[str], bool]:
        """What to send on (oldest first) and whether the user spoke meanwhile; empties."""
        chunks = list(self._backlog.drain())
        spoke, self.heard_speech = self.heard_speech, False
        return chunks, spoke
