"""A client that answers from fixed records and plays fixed events: the console without a
server, for pictures that never change (snapshots) and for what a real server rarely does
on cue (events lost on the way)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from foreman.client import (
    ApiError,
    ApprovalPrompt,
    CallList,
    Event,
    ForemanClient,
    RealtimeStatus,
    WakeStatus,
)
from foreman.clock import ManualClock

CLOCK_WALL = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC, a fixed "now"
URL = "http://127.0.0.1:8765"
DESK = "desk-0123456789ab"
CALL_SID = "CA" + "0" * 31 + "1"
CALL = f"call-{CALL_SID}"


def fixed_clock() -> ManualClock:
    return ManualClock(start=1000.0, wall_start=CLOCK_WALL)


def status(*, active: bool = True, **fields: Any) -> RealtimeStatus:
    body = {
        "active": active,
        "mode": "voice" if active else "text",
        "model": "gpt-realtime-2.1",
        "since": "2026-09-21T14:10:05Z" if active else None,
        "last_error": None,
        "transport": "websocket",
        "endpoint_host": "api.openai.com",
        "session_id": DESK if active else None,
        "calls": 1,
        **fields,
    }
    return RealtimeStatus.from_json(body)


def live_calls() -> CallList:
    call = {
        "call_sid": CALL_SID,
        "session_id": CALL,
        "direction": "inbound",
        "from": "+15550000111",
        "to": "+15550009999",
        "caller_name": "Ann",
        "started_at": CLOCK_WALL - 83,
    }
    return CallList.from_json({"active": [call], "recent": []})


def prompt(**fields: Any) -> ApprovalPrompt:
    body = {
        "id": "apr_0000000000000001",
        "tool": "send_email",
        "state": "pending",
        "arguments": {"to": "ann@example.com", "subject": "Running late", "body": "See you."},
        "risk": "high",
        "caller": "Ann",
        "caller_id": "+15550000111",
        "role": "contact",
        "channel": "phone",
        "session_id": CALL,
        "created_at": CLOCK_WALL - 25,
        "expires_at": CLOCK_WALL + 95,
        "expires_in_s": 95.0,
        **fields,
    }
    return ApprovalPrompt.from_json(body)


def event(seq: int, kind: str, **data: Any) -> Event:
    return Event.from_json({"seq": seq, "kind": kind, "at": CLOCK_WALL, "data": data})


class ScriptedClient(ForemanClient):
    """Answers `status`, `calls`, `approvals` and `wake` (None: 404) as given; the event
    stream plays `events`, then whatever `push` adds. `reads` counts each kind of read."""

    def __init__(
        self,
        *,
        status: RealtimeStatus,
        calls: CallList | None = None,
        approvals: Sequence[ApprovalPrompt] = (),
        wake: WakeStatus | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        super().__init__(URL, token="")
        self.status, self.calls_, self.prompts, self.wake = status, calls, approvals, wake
        self.reads: Counter[str] = Counter()
        self._events = list(events)
        self._pushed: asyncio.Queue[Event] = asyncio.Queue()

    def push(self, *events: Event) -> None:
        for item in events:
            self._pushed.put_nowait(item)

    async def realtime_status(self) -> RealtimeStatus:
        self.reads["status"] += 1
        return self.status

    async def calls(self) -> CallList:
        self.reads["calls"] += 1
        return self.calls_ or CallList()

    async def approvals(self) -> list[ApprovalPrompt]:
        self.reads["approvals"] += 1
        return list(self.prompts)

    async def wake_status(self) -> WakeStatus:
        self.reads["wake"] += 1
        if self.wake is None:
            raise ApiError(404, "Not Found")
        return self.wake

    async def events(
        self,
        kinds: Sequence[str] | None = None,
        *,
        on_open: Callable[[], object] | None = None,
    ) -> AsyncIterator[Event]:
        if on_open is not None:
            on_open()
        for item in self._events:
            yield item
        while True:
            yield await self._pushed.get()
