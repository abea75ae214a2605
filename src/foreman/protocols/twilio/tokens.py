"""Single-use stream tokens: defence in depth for the Media Streams upgrade.

The voice webhook (whose signature was checked) issues a token for the call and puts it in a
TwiML `<Parameter>`; the media socket redeems it on `start` together with the `callSid`. A
token works once, for that call only, within `ttl_s`. Pure: the caller passes the time in
(`clock.monotonic()`).

Only an HMAC of each token is kept, so a dump of this table does not hand out live tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_BYTES = 24  # 192 bits, 32 URL-safe characters


@dataclass(frozen=True, slots=True)
class _Entry:
    call_sid: str
    expires_at: float


class StreamTokens:
    """Issue with `issue(call_sid, now)`; check with `redeem(token, call_sid, now)`."""

    def __init__(self, ttl_s: float = 60.0, secret: bytes | None = None) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.ttl_s = ttl_s
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry] = {}

    def __len__(self) -> int:
        """Tokens issued and not yet redeemed or purged."""
        return len(self._entries)

    def _key(self, token: str) -> bytes:
        return hmac.new(self._secret, token.encode("utf-8", "replace"), hashlib.sha256).digest()

    def issue(self, call_sid: str, now: float) -> str:
        """A fresh unguessable token for `call_sid`, valid until `now + ttl_s`.
        Put it in the TwiML `<Parameter>`s; expired tokens are purged here too."""
        if not call_sid:
            raise ValueError("a stream token needs a call sid")
        self.purge(now)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self._entries[self._key(token)] = _Entry(call_sid, now + self.ttl_s)
        return token

    def redeem(self, token: str, call_sid: str, now: float) -> bool:
        """True exactly once for a live token issued for `call_sid`. Any attempt burns the
        token, so a token presented with the wrong call cannot be retried. On False, close
        the socket before opening a model session."""
        if not token or not isinstance(token, str):
            return False
        entry = self._entries.pop(self._key(token), None)
        if entry is None:
            return False
        same_call = hmac.compare_digest(entry.call_sid.encode(), call_sid.encode())
        return same_call and now < entry.expires_at

    def purge(self, now: float) -> None:
        """Forget every expired token."""
        expired = [k for k, e in self._entries.items() if now >= e.expires_at]
        for key in expired:
            del self._entries[key]
