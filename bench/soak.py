"""Soak: many phone calls through one server process, then look for what they left behind.

    PYTHONPATH=src python bench/soak.py                      # the full run (~16 minutes)
    PYTHONPATH=src python bench/soak.py --sequential 100 --concurrent 20 --duration 60

The Foreman server (the real app: signed `/twilio/voice`, `/twilio/media`, the call's
session, the OpenAI Realtime GA backend, the SQLite stores) runs in its own process with the
rate limits off; it prints its live asyncio task count every second. This process is the
load: fake Twilio callers (`foreman.testing.fake_twilio`), the mock Realtime server and the
Twilio REST stand-in, all on loopback.

1. warm-up: `--warmup` sequential calls and `--warmup-duration` seconds of concurrent ones
   (the allocator keeps the memory of its busiest moment: the baseline is taken after it has
   been reached once), then the idle baseline (RSS, open file descriptors, asyncio tasks,
   `--settle` seconds after the last call ended: past the server's next heartbeat);
2. sequential: `--sequential` calls one after another, each greeted (its first audio
   heard), then hung up by the caller; then idle again, measured;
3. concurrent: `--concurrent` calls at once for `--duration` seconds. Each call streams
   20 ms frames both ways, speaks (real espeak speech) every `--speak-every` seconds and is
   answered, hangs up after `--hold` seconds and is replaced at once. Live calls, RSS, fds
   and tasks are sampled every `--sample-every` seconds; then idle, measured.

Pass: RSS growth < 5 % (idle after each phase vs the idle baseline; the last sample with
>= 90 % of the slots live vs the first), no file descriptor and no asyncio task left over the
baseline, every call ended with a record. Prints markdown tables and the verdicts (`--json`
for the raw figures; `--tracemalloc`: a slower run, see `bench/soak_trace.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
import soak_trace  # noqa: E402  (beside this file)

ACCOUNT = "AC" + "c" * 32
TOKEN = "soak-auth-token"
PUBLIC = "https://soak.example.com"
GOAL_GROWTH = 0.05
STARTED = "started, idle"


# === server process ==========================================================================
def serve(mock_url: str, rest_base: str, db_path: str, *, trace: bool = False) -> None:
    """The real app on a free loopback port; prints `PORT n`, then `TASKS n` every second
    (the live asyncio tasks but this reporter)."""
    if trace:
        soak_trace.start()
    import logging
    import socket

    import uvicorn
    from pydantic import SecretStr

    from foreman.api.app import create_app
    from foreman.config import settings_from_dict
    from foreman.io.uvicorn_settings import uvicorn_settings

    logging.basicConfig(level=logging.ERROR)
    s = settings_from_dict(
        {
            "realtime": {"endpoint": mock_url},
            "storage": {"db_path": db_path},
            "calendar": {"ics_path": str(Path(db_path).with_name("calendar.ics"))},
            # One client places every call: per-address limits would throttle the soak.
            "limits": {"webhook_rate_per_s": 0.0, "api_rate_per_s": 0.0},
        }
    )
    s = s.replace(
        twilio=s.twilio.model_copy(
            update={
                "account_sid": ACCOUNT,
                "auth_token": SecretStr(TOKEN),
                "public_url": PUBLIC,
                "from_number": "+15550009999",
                "api_base": rest_base,
            }
        )
    )
    app = create_app(s)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, **uvicorn_settings(s), log_level="error", access_log=False)
    server = uvicorn.Server(config)

    async def main() -> None:
        async def report() -> None:
            me = asyncio.current_task()
            while True:
                tasks = [t for t in asyncio.all_tasks() if t is not me]
                # Python objects alive (pymalloc blocks): flat while RSS grows means the
                # growth is native memory (SQLite's page cache, the allocator), not objects.
                print(f"TASKS {len(tasks)} BLOCKS {sys.getallocatedblocks()}", flush=True)
                await asyncio.sleep(1.0)

        if trace:
            soak_trace.install(asyncio.get_running_loop())
        reporter = asyncio.create_task(report())
        try:
            await server.serve(sockets=[sock])
        finally:
            reporter.cancel()

    asyncio.run(main())


def rss_mb(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    tasks: int = -1
    blocks: int = -1
    traces: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _traced: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_tasks(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.to_thread(self.proc.stdout.readline)
            if not line:
                return
            if line.startswith("TASKS "):
                words = line.split()
                self.tasks, self.blocks = int(words[1]), int(words[3])
                self._changed.set()
            elif soak_trace.parse(line, self.traces) and line.startswith("TRACED"):
                self._traced.set()

    async def trace(self) -> None:
        """A `tracemalloc` snapshot in the server, diffed against its first one."""
        self._traced.clear()
        self.proc.send_signal(signal.SIGUSR1)
        await asyncio.wait_for(self._traced.wait(), 300)

    async def report(self) -> dict[str, int]:
        """The server's next report (after everything so far): tasks and Python blocks."""
        self._changed.clear()
        await asyncio.wait_for(self._changed.wait(), 10)
        return {"tasks": self.tasks, "blocks_k": self.blocks // 1000}

    def snapshot(self) -> dict[str, float]:
        return {"rss_mb": round(rss_mb(self.proc.pid), 1), "fds": open_fds(self.proc.pid)}


# === load ====================================================================================
@dataclass
class Tally:
    placed: int = 0
    greeted: int = 0
    answered: int = 0  # replies to the caller's speech
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def fail(self, exc: BaseException) -> None:
        self.failed += 1
        key = f"{type(exc).__name__}: {str(exc)[:80]}"
        self.errors[key] = self.errors.get(key, 0) + 1


class Load:
    def __init__(self, base: str, mock: Any, rest: Any, speech: bytes) -> None:
        self.base = base
        self.mock = mock
        self.rest = rest
        self.speech = speech
        self.tally = Tally()
        self.sids: list[str] = []
        self.reached: list[str] = []  # calls whose webhook was answered: the server knows them

    def caller(self, n: int, *, continuous: bool) -> Any:
        from foreman.testing.fake_twilio import FakeTwilioCaller

        caller = FakeTwilioCaller(
            server_http=self.base,
            public_url=PUBLIC,
            auth_token=TOKEN,
            account_sid=ACCOUNT,
            from_=f"+1555{n % 10_000_000:07d}",
            continuous_silence=continuous,
            record_media=False,
        )
        self.rest.add_live_call(caller.call_sid, caller.remote_hangup)
        self.sids.append(caller.call_sid)
        return caller

    async def short_call(self, n: int) -> None:
        """Dial, hear the start of the greeting, hang up."""
        caller = self.caller(n, continuous=False)
        self.tally.placed += 1
        try:
            await caller.dial()
            await caller.wait_played_ms(100, timeout=15)
            self.tally.greeted += 1
        except Exception as exc:
            self.tally.fail(exc)
        finally:
            await self.hang_up(caller)

    async def hang_up(self, caller: Any) -> None:
        if caller.twiml is not None:
            self.reached.append(caller.call_sid)
        await caller.aclose()

    async def long_call(self, n: int, hold_s: float, speak_every_s: float) -> None:
        """Stream both ways for `hold_s`, speaking every `speak_every_s`, then hang up."""
        caller = self.caller(n, continuous=True)
        self.tally.placed += 1
        loop = asyncio.get_running_loop()
        try:
            await caller.dial()
            await caller.wait_played_ms(100, timeout=15)
            self.tally.greeted += 1
            end = loop.time() + hold_s
            while (left := end - loop.time()) > speak_every_s:
                await asyncio.sleep(speak_every_s)  # the caller's own pace, not a sync
                heard = caller.played_ms
                await caller.play_speech(self.speech)
                with contextlib.suppress(TimeoutError):
                    await caller.wait_played_ms(int(heard) + 500, timeout=10)
                    self.tally.answered += 1
            await asyncio.sleep(max(0.0, left))
        except Exception as exc:
            self.tally.fail(exc)
        finally:
            await self.hang_up(caller)


async def idle(http: Any, base: str) -> None:
    """Wait until the server has no live call left (every record written)."""
    async with asyncio.timeout(60):
        while True:
            if not (await http.get(base + "/api/calls")).json()["active"]:
                return
            await asyncio.sleep(0.2)


async def measured(server: Server, http: Any, label: str, args: Any) -> dict[str, Any]:
    """Idle, then `--settle` seconds more (the heartbeat's idle work), then measured."""
    await idle(http, server.base)
    await asyncio.sleep(args.settle)
    row = {"phase": label, **server.snapshot(), **await server.report()}
    if args.tracemalloc and label != STARTED:
        await server.trace()
    return row


def start_server(mock_url: str, rest_base: str, db: Path, trace: bool) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "serve", "--mock-url", mock_url]
    return subprocess.Popen(
        [*command, "--rest-base", rest_base, "--db", str(db)] + ["--tracemalloc"] * trace,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from foreman.testing.mock_realtime import Match, MockRealtimeServer, Reply, Rule, Scenario
    from foreman.testing.speech import synthesize
    from foreman.testing.twilio_rest_standin import TwilioRestStandIn

    scenario = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say("Hello, this is Foreman.")),
            Rule(Match.any(), Reply.say("Sure, noted.")),
        ]
    )
    speech = synthesize("please note that I called", 8000)
    folder = Path(tempfile.mkdtemp(prefix="foreman-soak-"))
    async with MockRealtimeServer(scenario) as mock, TwilioRestStandIn(ACCOUNT, TOKEN) as rest:
        proc = start_server(mock.url, rest.base_url, folder / "foreman.db", args.tracemalloc)
        try:
            assert proc.stdout is not None
            port = int((await asyncio.to_thread(proc.stdout.readline)).split()[1])
            server = Server(proc, f"http://127.0.0.1:{port}")
            reader = asyncio.create_task(server.read_tasks())
            load = Load(server.base, mock, rest, speech)
            rows: list[dict[str, Any]] = []
            async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
                async with asyncio.timeout(30):
                    while True:
                        with contextlib.suppress(httpx.HTTPError):
                            await http.get(server.base + "/api/health")
                            break
                        await asyncio.sleep(0.05)
                rows.append(await measured(server, http, STARTED, args))
                for n in range(args.warmup):
                    await load.short_call(n)
                if args.warmup_duration > 0:  # the allocator's high-water mark, reached once
                    await concurrent(load, server, http, args, args.warmup_duration)
                label = "baseline: after the warm-up, idle"
                rows.append(await measured(server, http, label, args))
                t0 = time.monotonic()
                for n in range(args.sequential):
                    await load.short_call(1000 + n)
                seq_s = time.monotonic() - t0
                label = f"after {args.sequential} sequential"
                rows.append(await measured(server, http, label, args))
                samples = await concurrent(load, server, http, args, args.duration)
                label = f"after {args.concurrent} concurrent, idle"
                rows.append(await measured(server, http, label, args))
                recorded = await records(folder / "foreman.db", load.reached)
            reader.cancel()
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 15)
            if proc.poll() is None:
                proc.kill()
    return {
        "args": vars(args),
        "rows": rows,
        "samples": samples,
        "tally": vars(load.tally),
        "sequential_s": round(seq_s, 1),
        "records": recorded,
        "traces": server.traces,
    }


async def concurrent(
    load: Load, server: Server, http: Any, args: argparse.Namespace, duration: float
) -> list[dict[str, Any]]:
    """`--concurrent` slots, each placing calls back to back for `duration` seconds; a
    sample (live calls, RSS, fds, tasks) every `--sample-every` seconds."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stop_at = t0 + duration

    async def slot(i: int) -> None:
        await asyncio.sleep(i * 0.05)  # spread the dialling
        k = 0
        while loop.time() < stop_at:
            hold = min(args.hold, stop_at - loop.time())
            await load.long_call(100_000 + i * 10_000 + k, hold, args.speak_every)
            k += 1

    samples = []
    slots = [asyncio.create_task(slot(i)) for i in range(args.concurrent)]
    while (next_at := loop.time() + args.sample_every) < stop_at:
        await asyncio.sleep(next_at - loop.time())
        live = len((await http.get(server.base + "/api/calls")).json()["active"])
        samples.append(
            {
                "t_s": round(loop.time() - t0),
                "live": live,
                "placed": load.tally.placed,
                **server.snapshot(),
                **await server.report(),
            }
        )
    await asyncio.gather(*slots)
    return samples


async def records(db: Path, sids: list[str]) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT call_sid, ended_at IS NOT NULL FROM calls").fetchall())
    return {
        "calls": len(sids),
        "recorded": sum(1 for s in sids if s in rows),
        "ended": sum(1 for s in sids if rows.get(s)),
    }


def growth(a: dict[str, Any], b: dict[str, Any]) -> float:
    return float((b["rss_mb"] - a["rss_mb"]) / a["rss_mb"])


def verdicts(result: dict[str, Any]) -> list[str]:
    base, after_seq, after_conc = result["rows"][1:4]
    full = [s for s in result["samples"] if s["live"] >= result["args"]["concurrent"] * 0.9]
    out = []
    pairs = [
        ("sequential (idle after vs idle baseline)", base, after_seq),
        ("concurrent (idle after vs idle baseline)", base, after_conc),
    ]
    if len(full) >= 2:
        first, last = full[0], full[-1]
        label = f"while live (at {last['t_s']} s vs at {first['t_s']} s, >= 90 % of slots live)"
        pairs.append((label, first, last))
    for label, a, b in pairs:
        g = growth(a, b)
        out.append(f"{'PASS' if g < GOAL_GROWTH else 'FAIL'} RSS growth, {label}: {g * 100:+.1f} %")
    for row in (after_seq, after_conc):
        fd_ok = row["fds"] <= base["fds"]
        task_ok = row["tasks"] <= base["tasks"]
        out.append(
            f"{'PASS' if fd_ok and task_ok else 'FAIL'} left over {row['phase']}: "
            f"{row['fds'] - base['fds']:+d} fds, {row['tasks'] - base['tasks']:+d} tasks"
        )
    rec = result["records"]
    whole = rec["recorded"] == rec["ended"] == rec["calls"]
    out.append(
        f"{'PASS' if whole else 'FAIL'} records: {rec['ended']} of the {rec['calls']} calls "
        "the server answered recorded as ended"
    )
    t = result["tally"]
    out.append(
        f"{'PASS' if t['failed'] == 0 else 'FAIL'} calls: {t['placed']} placed, "
        f"{t['greeted']} greeted, {t['answered']} spoken turns answered, {t['failed']} failed"
        + (f" ({t['errors']})" if t["errors"] else "")
    )
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| phase | RSS (MB) | open fds | asyncio tasks | Python blocks (k) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['phase']} | {r['rss_mb']} | {r['fds']} | {r['tasks']} | {r['blocks_k']} |"
        )
    lines += [
        "",
        "| concurrent phase: at (s) | live calls | calls placed so far | RSS (MB) | open fds "
        "| asyncio tasks | Python blocks (k) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["samples"]:
        lines.append(
            f"| {r['t_s']} | {r['live']} | {r['placed']} | {r['rss_mb']} | {r['fds']} "
            f"| {r['tasks']} | {r['blocks_k']} |"
        )
    lines.append("")
    lines.extend(f"* {v}" for v in verdicts(result))
    lines.append(f"* sequential calls took {result['sequential_s']} s")
    lines += soak_trace.markdown(result["traces"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd")
    sv = sub.add_parser("serve", help="(internal) run the server process")
    sv.add_argument("--mock-url", required=True)
    sv.add_argument("--rest-base", required=True)
    sv.add_argument("--db", required=True)
    sv.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--warmup", type=int, default=20, help="sequential warm-up calls")
    p.add_argument(
        "--warmup-duration",
        type=float,
        default=60.0,
        help="seconds of concurrent warm-up calls before the baseline (0: none)",
    )
    p.add_argument("--sample-every", type=float, default=30.0, help="seconds between samples")
    p.add_argument("--sequential", type=int, default=1000)
    p.add_argument("--concurrent", type=int, default=100)
    p.add_argument("--duration", type=float, default=600.0, help="seconds of concurrent calls")
    p.add_argument("--hold", type=float, default=30.0, help="seconds each concurrent call lasts")
    p.add_argument("--speak-every", type=float, default=8.0)
    p.add_argument("--settle", type=float, default=6.0, help="idle seconds before measuring")
    p.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    p.add_argument("--tracemalloc", action="store_true", help="Python allocations, by line")
    args = p.parse_args(argv)
    if args.cmd == "serve":
        serve(args.mock_url, args.rest_base, args.db, trace=args.tracemalloc)
        return 0
    del args.cmd
    result = asyncio.run(soak(args))
    print(json.dumps(result, indent=1) if args.json else markdown(result))
    return 0 if all(v.startswith("PASS") for v in verdicts(result)) else 1


if __name__ == "__main__":
    sys.exit(main())
