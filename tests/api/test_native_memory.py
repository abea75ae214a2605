"""The C allocator under the server: malloc arenas capped once at start-up (glibc only, a
no-op elsewhere), and free pages handed back by the heartbeat while no session is live."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest

from foreman.api import app as app_module
from foreman.api import native_memory
from foreman.api.app import _heartbeat, create_app
from foreman.config import settings_from_dict
from foreman.stores import memory_stores
from foreman.testing.timeouts import unit

# Eight threads allocating at the same moment, then glibc's own report of its arenas.
ARENA_PROBE = textwrap.dedent(
    """
    import sys, threading
    from foreman.api import native_memory
    if sys.argv[1] == "limit":
        assert native_memory.limit_arenas()
    barrier = threading.Barrier(8)
    def work():
        barrier.wait()
        kept = [bytearray(200_000) for _ in range(20)]
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    native_memory.glibc().malloc_stats()  # one "Arena n:" block per arena, on stderr
    """
)


class FakeLibc:
    def __init__(self) -> None:
        self.mallopt_calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.mallopt_calls.append((param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        return 1


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a process that has not capped its arenas yet, with no operator setting."""
    monkeypatch.setattr(native_memory, "_limited", None)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)


def arenas_after_eight_threads(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", ARENA_PROBE, mode],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


@pytest.mark.skipif(native_memory.glibc() is None, reason="glibc's malloc only")
def test_on_glibc_the_cap_holds_however_many_threads_allocate() -> None:
    assert arenas_after_eight_threads("none") > native_memory.ARENA_MAX
    assert arenas_after_eight_threads("limit") <= native_memory.ARENA_MAX


def test_the_cap_is_applied_once_per_process(monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    libc = FakeLibc()
    monkeypatch.setattr(native_memory, "glibc", lambda: libc)
    assert native_memory.limit_arenas() is True
    assert native_memory.limit_arenas() is True
    assert libc.mallopt_calls == [(-8, native_memory.ARENA_MAX)]


def test_the_operators_environment_wins(monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    libc = FakeLibc()
    monkeypatch.setattr(native_memory, "glibc", lambda: libc)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert native_memory.limit_arenas() is False
    assert libc.mallopt_calls == []


def test_elsewhere_than_glibc_nothing_is_done(monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert native_memory.glibc.__wrapped__() is None  # type: ignore[attr-defined]
    monkeypatch.setattr(native_memory, "glibc", lambda: None)
    assert native_memory.limit_arenas() is False
    assert native_memory.trim() is False


async def test_the_server_caps_the_arenas_as_it_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    calls: list[None] = []
    monkeypatch.setattr(app_module, "limit_arenas", lambda: calls.append(None) or True)
    app = create_app(
        settings_from_dict({"storage": {"db_path": str(tmp_path / "f.db")}}),
        stores=memory_stores(),
    )
    assert calls == []
    async with asyncio.timeout(unit(10)), app.router.lifespan_context(app):
        assert calls == [None]


class CountingBeats:
    """The sessions store's heartbeat, counting; `wanted` is set after `n` beats."""

    def __init__(self, n: int) -> None:
        self.beats = 0
        self.n = n
        self.wanted = asyncio.Event()

    async def beat(self, at: float) -> None:
        self.beats += 1
        if self.beats >= self.n:
            self.wanted.set()


async def test_the_heartbeat_trims_only_while_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    beats = CountingBeats(4)
    monkeypatch.setattr(app_module, "trim", lambda: trims.append(beats.beats) or True)
    idle_at_beat = {1: True, 2: False, 3: True}
    stores: Any = SimpleNamespace(sessions=beats)  # the heartbeat's only store
    task = asyncio.create_task(
        _heartbeat(stores, lambda: 0.0, 0.0, idle=lambda: idle_at_beat.get(beats.beats, False))
    )
    try:
        async with asyncio.timeout(unit(10)):
            await beats.wanted.wait()
    finally:
        task.cancel()
    assert trims == [1, 3]
