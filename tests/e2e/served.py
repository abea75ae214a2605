"""`foreman serve` as a user runs it (a real process), with the phone path set up: the mock
Realtime server and the Twilio REST stand-in run in the test process, the config file and
the database live in a temporary folder, and every line the server writes is kept."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twilio_app import ACCOUNT, PUBLIC, TOKEN

from foreman.client import ForemanClient
from foreman.client_types import Event
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import MockRealtimeServer, Scenario
from foreman.testing.timeouts import unit
from foreman.testing.twilio_rest_standin import TwilioRestStandIn

REPO = Path(__file__).resolve().parents[2]
OWNER = "+15550000100"
ANN = "+15550000111"
SERVING = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")


@dataclass
class Output:
    """Every line the process wrote (stdout and stderr together), as it comes."""

    lines: list[str] = field(default_factory=list)
    closed: bool = False
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def read_all(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    async def line(self, pattern: str | re.Pattern[str], timeout: float = 15.0) -> re.Match[str]:  # noqa: ASYNC109 - a deadline
        """The first line (so far or to come) matching `pattern`."""
        found: list[re.Match[str]] = []

        def matched() -> bool:
            found[:] = [m for m in map(re.compile(pattern).search, self.lines) if m][:1]
            return bool(found) or self.closed

        async with asyncio.timeout(unit(timeout)), self._changed:
            await self._changed.wait_for(matched)
        if not found:
            raise AssertionError(f"no line matches {pattern!r}:\n" + "\n".join(self.lines))
        return found[0]

    async def read_to_end(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.closed)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    output: Output
    base: str
    db: Path
    mock: MockRealtimeServer
    rest: TwilioRestStandIn

    def caller(self, **kw: Any) -> FakeTwilioCaller:
        kw.setdefault("from_", OWNER)
        return FakeTwilioCaller(
            server_http=self.base, public_url=PUBLIC, auth_token=TOKEN, account_sid=ACCOUNT, **kw
        )

    def interrupt(self, sig: signal.Signals = signal.SIGINT) -> None:
        """Ctrl-C (or `kill`, with SIGTERM)."""
        self.proc.send_signal(sig)

    async def exited(self, timeout: float) -> int:  # noqa: ASYNC109 - a deadline
        """The exit status, once the process ended and all it wrote is read."""
        try:
            async with asyncio.timeout(timeout):
                status = await self.proc.wait()
                await self.output.read_to_end()
        except TimeoutError:
            raise AssertionError(
                f"still running after {timeout:g} s; it wrote:\n{self.output.text}"
            ) from None
        return status


class EventReader:
    """A client of `GET /api/events` (the typed client), from connection to the stream's end."""

    def __init__(self, base: str) -> None:
        self.events: list[Event] = []
        self.ended_cleanly = False
        self._connected = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(base))

    async def _read(self, base: str) -> None:
        async with ForemanClient(base) as client:
            stream = client.events()
            self._connected.set()
            async for event in stream:
                async with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        self.ended_cleanly = True  # the stream ended; a broken connection raises instead

    async def next(self, kind: str, timeout: float = 15.0, **data: Any) -> Event:  # noqa: ASYNC109 - a deadline
        """The first event of `kind` (so far or to come) whose data has the `data` given."""

        def wanted(event: Event) -> bool:
            return event.kind == kind and all(event.data.get(k) == v for k, v in data.items())

        async with asyncio.timeout(unit(timeout)), self._changed:
            await self._changed.wait_for(lambda: any(map(wanted, self.events)))
        return next(filter(wanted, self.events))

    async def ended(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a deadline
        """Wait for the stream to end; raises what ended it if that was not the server."""
        async with asyncio.timeout(unit(timeout)):
            await self._task

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


def _env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FOREMAN_", "TWILIO_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["TWILIO_AUTH_TOKEN"] = TOKEN  # as a user would set it: in the environment
    return env


def write_config(folder: Path, mock_url: str, rest_base: str, extra: str = "") -> Path:
    """The config file; `extra` is more TOML at the end (whole sections not used above)."""
    cfg = folder / "foreman.toml"
    cfg.write_text(
        f'[realtime]\nendpoint = "{mock_url}"\n'
        f'[twilio]\npublic_url = "{PUBLIC}"\naccount_sid = "{ACCOUNT}"\n'
        f'from_number = "+15550009999"\napi_base = "{rest_base}"\n'
        f'[identity]\nowner_numbers = ["{OWNER}"]\ncontacts = {{ Ann = "{ANN}" }}\n'
        f'[storage]\ndb_path = "{folder / "foreman.db"}"\nheartbeat_s = 0.5\n'
        f'[calendar]\nics_path = "{folder / "calendar.ics"}"\n' + extra
    )
    return cfg


@contextlib.asynccontextmanager
async def served_foreman(
    folder: Path, scenario: Scenario, *, rest_base: str | None = None, extra: str = ""
) -> AsyncIterator[Served]:
    """`foreman serve` on a free port, ready (serving, start-up complete). `rest_base`
    points Twilio REST elsewhere than the stand-in (which still runs); `extra` is more
    config (whole sections)."""
    async with MockRealtimeServer(scenario) as mock, TwilioRestStandIn(ACCOUNT, TOKEN) as rest:
        cfg = write_config(folder, mock.url, rest_base or rest.base_url, extra)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "foreman",
            "--config",
            str(cfg),
            "serve",
            "--port",
            "0",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=_env(),
        )
        assert proc.stdout is not None
        output = Output()
        reader = asyncio.create_task(output.read_all(proc.stdout))
        try:
            base = (await output.line(SERVING, timeout=30)).group(1)
            await output.line("Application startup complete", timeout=30)
            yield Served(proc, output, base, folder / "foreman.db", mock, rest)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await reader
