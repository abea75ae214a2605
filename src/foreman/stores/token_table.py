"""The stream-token rules as a pure table: time is passed in, nothing awaits or sleeps.

`MemoryStreamTokenStore` wraps it; a shared implementation follows the same rules (see
`StreamTokenStore`). One entry per CallSid, so replaying one signed webhook any number of
times never grows the table, and an admitted CallSid gets no new token until released.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from foreman.protocols.twilio.tokens import TOKEN_BYTES

DEFAULT_ADMITTED_TTL_S = 24 * 3600.0  # longer than any call we expect to stay up


@dataclass(frozen=True, slots=True)
class _Live:
    key: bytes  # HMAC of the token, never the token
    expires_at: float


class StreamTokenTable:
    """`issue` / `redeem` / `release` with the `StreamTokenStore` guarantees. Not
    thread-safe: one event loop drives it."""

    def __init__(
        self,
        ttl_s: float = 60.0,
        *,
        admitted_ttl_s: float = DEFAULT_ADMITTED_TTL_S,
        secret: bytes | None = None,
    ) -> None:
        if ttl_s <= 0 or admitted_ttl_s <= 0:
            raise ValueError("token lifetimes must be positive")
        self.ttl_s = ttl_s
        self.admitted_ttl_s = admitted_ttl_s
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._live: dict[str, _Live] = {}  # call sid -> its one live token
        self._owner: dict[bytes, str] = {}  # token key -> call sid
        self._admitted: dict[str, float] = {}  # call sid -> forget after

    def __len__(self) -> int:
        """Entries held: live tokens plus admitted CallSids."""
        return len(self._live) + len(self._admitted)

    def issue(self, call_sid: str, now: float) -> str | None:
        if not call_sid or not isinstance(call_sid, str):
            raise ValueError("a stream token needs a call sid")
        self.purge(now)
        if call_sid in self._admitted:
            return None
        self._drop_live(call_sid)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        key = self._key(token)
        self._live[call_sid] = _Live(key, now + self.ttl_s)
        self._owner[key] = call_sid
        return token

    def redeem(self, token: str, call_sid: str, now: float) -> bool:
        if not token or not isinstance(token, str) or not isinstance(call_sid, str):
            return False
        owner = self._owner.get(self._key(token))
        if owner is None:
            return False
        live = self._drop_live(owner)  # burnt whatever happens next
        same_call = hmac.compare_digest(owner.encode(), call_sid.encode())
        if not same_call or live is None or now >= live.expires_at:
            return False
        self._admitted[owner] = now + self.admitted_ttl_s
        return True

    def release(self, call_sid: str) -> None:
        self._admitted.pop(call_sid, None)
        self._drop_live(call_sid)

    def purge(self, now: float) -> None:
        """Forget expired tokens and admissions older than `admitted_ttl_s`."""
        for sid in [s for s, e in self._live.items() if now >= e.expires_at]:
            self._drop_live(sid)
        for sid in [s for s, until in self._admitted.items() if now >= until]:
            del self._admitted[sid]

    def _drop_live(self, call_sid: str) -> _Live | None:
        live = self._live.pop(call_sid, None)
        if live is not None:
            self._owner.pop(live.key, None)
        return live

    def _key(self, token: str) -> bytes:
        return hmac.new(self._secret, token.encode("utf-8", "replace"), hashlib.sha256).digest()
