"""The console's link to one server: the event stream, kept open across outages, and the
reads of state the model asks for.

`follow()` reads the event stream and posts what happens as messages (`Opened` once the
server has subscribed the stream, `Received` for each event, `Lost` when it breaks), then
tries again after a delay (at once on `retry_now()`). `refresh()` reads the parts of the
state that `want()` asked for, one read after another: an event that comes during a read
asks for a read of its own, so the last word is always a read made after the last event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from textual.message import Message

from foreman.client import ApiError, ClientError, ConnectionFailed, Event, ForemanClient
from foreman.clock import Clock
from foreman.tui.model import ConsoleState, Refresh

RETRY_DELAYS = (0.5, 1.0, 2.0, 3.0, 5.0)  # seconds between attempts; the last one repeats


class ServerLink:
    class Opened(Message):
        """The event stream is subscribed: what the server says from now on comes."""

    class Lost(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class Received(Message):
        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    def __init__(
        self,
        client: ForemanClient,
        model: ConsoleState,
        clock: Clock,
        post: Callable[[Message], object],
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.client = client
        self.model = model
        self.attempts = 0  # failed attempts since the stream was last open
        self._clock = clock
        self._post = post
        self._delays = tuple(retry_delays)
        self._retry_now = asyncio.Event()
        self._wanted = Refresh.NONE
        self._due = asyncio.Event()

    # --- the event stream -------------------------------------------------------------------
    async def follow(self) -> None:
        """Run until cancelled."""
        while True:
            try:
                async for event in self.client.events(on_open=self._opened):
                    self._post(self.Received(event))
                raise ConnectionFailed(f"foreman at {self.client.base_url} closed the stream")
            except ClientError as exc:
                self.attempts += 1
                self._post(self.Lost(str(exc)))
            delay = self._delays[min(self.attempts, len(self._delays)) - 1]
            self._retry_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._retry_now.wait()

    def _opened(self) -> None:
        self.attempts = 0
        self._post(self.Opened())

    def retry_now(self) -> None:
        self._retry_now.set()

    # --- reading state ------------------------------------------------------------------------
    def want(self, parts: Refresh) -> None:
        """Read these parts of the server's state again (soon, once)."""
        if parts:
            self._wanted |= parts
            self._due.set()

    async def refresh(self, after: Callable[[str | None], None]) -> None:
        """Run until cancelled; `after(error)` follows each read (error: why it failed)."""
        while True:
            await self._due.wait()
            self._due.clear()
            parts, self._wanted = self._wanted, Refresh.NONE
            try:
                await self._read(parts)
            except ClientError as exc:  # an outage: the stream notices it too
                after(f"could not read the state: {exc}")
            else:
                after(None)

    async def _read(self, parts: Refresh) -> None:
        client, model = self.client, self.model
        if Refresh.STATUS in parts:
            model.set_status(await client.realtime_status())
        if Refresh.CALLS in parts:
            try:
                asked_at = model.call_events
                model.set_calls(await client.calls(), asked_at)
            except ApiError as exc:
                if exc.status != 503:  # 503: the phone bridge is off on this server
                    raise
        if Refresh.APPROVALS in parts:
            asked_at = model.approval_events
            prompts = await client.approvals()
            model.set_approvals(prompts, self._clock.monotonic(), asked_at)
        if Refresh.WAKE in parts:
            try:
                model.set_wake(await client.wake_status())
            except ApiError as exc:
                if exc.status != 404:  # 404: no wake sentinel on this server
                    raise
                model.set_wake(None)
