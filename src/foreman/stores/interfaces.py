"""What Foreman keeps outside a session's own objects, as async interfaces.

Every method is a coroutine because the shared implementations (Redis for live state,
PostgreSQL for history) talk over the network; the embedded defaults in this package run
SQLite on worker threads and keep the rest in memory. Callers depend only on what the
docstrings below promise. Any method may raise `OSError` or the backing client's error when
the store is unreachable; none of them retries on its own. Cancelling the task that awaits a
call does not undo it: a write already handed to the store may still land.

Clocks: `now` arguments are seconds on whatever clock every user of the same store shares.
A per-process store is fine with `clock.monotonic()`; a store shared by several processes
needs wall time (`clock.wall()`) or expires entries by itself (Redis `PX`). Record fields
named `*_at` are unix time.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from foreman.stores.records import (
    ApprovalRecord,
    AuditRecord,
    CallRecord,
    OutboundIntent,
    SessionRecord,
)


@runtime_checkable
class StreamTokenStore(Protocol):
    """Single-use tokens that tie a Media Streams socket to the signed webhook that asked for
    it (https://www.twilio.com/docs/voice/twiml/stream).

    Guarantees, per CallSid (outbound calls use their intent ref in its place):

    * At most one live token. `issue` again before redemption replaces the previous token
      (Twilio may retry a webhook), so replaying one signed webhook any number of times
      leaves one entry, and only the newest token works.
    * Once a token has been redeemed (its stream admitted) `issue` returns None for that
      CallSid until `release(call_sid)`: a replayed webhook cannot open a second stream
      for a live call. An admitted CallSid that is never released is forgotten after a
      day (longer than any call), so the table stays bounded.
    * A token is good once, for its own CallSid, before `issued + ttl`. Any redemption
      attempt burns it, right or wrong, so a token cannot be tried twice.
    * Only an HMAC of each token is stored: a dump of the table holds no live token.
    * Expired entries are purged; each operation is atomic (two concurrent redemptions of
      one token: exactly one wins).
    """

    async def issue(self, call_sid: str, now: float) -> str | None:
        """A fresh token to put in the TwiML `<Parameter>`, or None when this CallSid's stream
        was already admitted (answer the webhook with a hang-up). Raises ValueError for an
        empty call sid."""
        ...

    async def redeem(self, token: str, call_sid: str, now: float) -> bool:
        """True exactly once for the live token of `call_sid`; the stream is then admitted.
        On False close the socket before opening a model session."""
        ...

    async def release(self, call_sid: str) -> None:
        """The call ended: forget its admission and any live token. Idempotent."""
        ...

    async def aclose(self) -> None:
        """Release the store's resources; no other method may be called afterwards."""
        ...


@runtime_checkable
class OutboundIntentStore(Protocol):
    """Calls we placed, kept from `POST /api/calls` until their media stream starts.

    Records expire `ttl` after `created` (the stream token's lifetime): `purge` drops them,
    shared implementations may drop them by themselves. Each operation is atomic.
    """

    async def put(self, intent: OutboundIntent) -> None:
        """Keep `intent` under its ref, replacing any intent with the same ref."""
        ...

    async def attach_call_sid(self, ref: str, call_sid: str) -> bool:
        """Record Twilio's CallSid on a kept intent. False (and nothing stored) when the
        intent is gone already: its stream started, or it expired."""
        ...

    async def take(self, ref: str) -> OutboundIntent | None:
        """Remove and return the intent: of any number of concurrent takers exactly one gets
        it, the rest get None."""
        ...

    async def purge(self, now: float) -> int:
        """Drop intents older than the ttl; returns how many."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ApprovalStore(Protocol):
    """The durable record of approval prompts. `policy.ApprovalBook` (driven by the approval
    service) still decides; this store records each prompt when it opens and after every
    state change, so a restart or another instance can see what was asked and answered.

    * `save` is a conditional upsert: it writes while the stored record is absent or
      pending and never overwrites a final one (approved, denied, expired, cancelled). Two
      instances answering one prompt therefore cannot both win: the loser's `save` returns
      False and it should `get` the stored outcome.
    * Saving the same record twice is harmless.
    * Answers coming from another instance are a notification concern, not this store's:
      a shared implementation adds a change feed (for Redis, a pub/sub channel carrying the
      approval id after each successful `save`) that the approval service subscribes to,
      then re-reads with `get`. Nothing here needs to change for that.
    """

    async def save(self, record: ApprovalRecord) -> bool:
        """Write `record` unless the stored one is already final; True when written."""
        ...

    async def get(self, approval_id: str) -> ApprovalRecord | None: ...

    async def pending(self) -> list[ApprovalRecord]:
        """Pending prompts, oldest first (by `created_at`, then id)."""
        ...

    async def expire_orphans(self, now: float, reason: str) -> list[ApprovalRecord]:
        """At start-up, before opening new prompts: mark every pending prompt expired (a
        crashed process left it; nobody is waiting for its answer any more) with
        `answered_at=now` (or its `created_at`, when later) and `note=reason`,
        atomically, and return them oldest first."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SessionRegistryStore(Protocol):
    """The live sessions (phone calls, the desk assistant, chats) every instance can list.

    Holds only live sessions: `remove` when a session ends. Upserts of one id are
    last-writer-wins. A shared implementation is built with this instance's name, lists
    every instance's sessions, and marks only its own in `mark_interrupted`.
    """

    async def upsert(self, record: SessionRecord) -> None:
        """Insert or replace the session with `record.id` (call again when status changes)."""
        ...

    async def remove(self, session_id: str) -> bool:
        """Forget an ended session; False when it was not there. Idempotent."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None: ...

    async def live(self) -> list[SessionRecord]:
        """Every live session, oldest first (by `started_at`, then id)."""
        ...

    async def mark_interrupted(self, now: float) -> list[SessionRecord]:
        """At start-up: remove every session a crashed process left and return them, oldest
        first, each with `ended_at=now` (or its `started_at`, when later), so the caller can
        log them. Atomic."""
        ...

    async def beat(self, now: float) -> None:
        """This instance is alive at `now` (unix time). The server calls it every
        `[storage] heartbeat_s`, so a crash is dated to within that."""
        ...

    async def last_beat(self) -> float | None:
        """The last `beat` this instance stored (None: never): when a crashed process was
        last known alive."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class AuditStore(Protocol):
    """The append-only log of tool decisions. Rows are never changed or deleted here."""

    async def record(self, rec: AuditRecord) -> int:
        """Append one row; returns its id, larger than every id before it. Arguments that
        JSON cannot hold are stored as strings."""
        ...

    async def query(self, limit: int = 100, session_id: str | None = None) -> list[dict[str, Any]]:
        """The newest `limit` rows (of one session when given), newest first, as dicts: the
        record's fields plus `id`, arguments decoded."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CallRecordStore(Protocol):
    """The history of phone calls, written when a call starts and again when it ends, so a
    crash loses at most the end time.

    * `begin` then `finish` once per CallSid; a finished record is never reopened or
      re-finished (the first end wins).
    * `mark_interrupted` at start-up closes what a crashed process left live.
    """

    async def begin(self, record: CallRecord) -> bool:
        """Store a live record (`ended_at` None, else ValueError), replacing a live record
        with the same CallSid. False when that call has already finished."""
        ...

    async def finish(self, call_sid: str, ended_at: float, reason: str) -> bool:
        """End a live call. False when the call is unknown or already finished."""
        ...

    async def get(self, call_sid: str) -> CallRecord | None: ...

    async def recent(self, limit: int = 50) -> list[CallRecord]:
        """The newest `limit` finished calls by `ended_at`, returned oldest first."""
        ...

    async def mark_interrupted(self, now: float) -> list[CallRecord]:
        """At start-up: end every live call with `ended_at=now` (the best time known: the
        last heartbeat; a call that began after it ends at its own start) and reason
        `INTERRUPTED_REASON`, atomically; returns them, oldest first."""
        ...

    async def aclose(self) -> None: ...
