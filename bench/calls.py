"""Benchmark: N concurrent phone calls through the Twilio bridge to a Realtime mock.

    PYTHONPATH=src python bench/calls.py --calls 10 100 300 --duration 20

The Foreman server (the real app: `/twilio/voice`, `/twilio/media`, the OpenAI Realtime GA
backend) runs in its own process, so its CPU time and RSS are its own. This process is the
load: N lean fake Twilio callers (signed webhook, signed upgrade, one 20 ms µ-law frame per
call every 20 ms, marks echoed at 8 kHz playback pace, all pending marks at once on `clear`)
and a lean GA Realtime mock (session.created/updated, scripted responses of 100 ms deltas at
real-time pace, `speech_started` in the middle of every second response).

Measured in a steady window after all calls are up:
* CPU share of one core per call = server process CPU time / wall time / N
* RSS per call = (server RSS with N calls - RSS before the first call) / N
* added latency, caller -> model: a caller's media frame sent -> the same base64 payload in
  `input_audio_buffer.append` at the mock (µ-law passthrough forwards it untouched);
* added latency, model -> caller: a mock `response.output_audio.delta` sent -> its frames in a
  Twilio `media` at the caller (frames carry a 4-byte tag so they can be matched);
* barge-in reaction: the mock sends `input_audio_buffer.speech_started` -> the caller gets
  `clear`.
Both ends of each latency live in this process, on one monotonic clock; the numbers include
two loopback hops and this process's own scheduling delay (its CPU use is reported too).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

ACCOUNT = "AC" + "b" * 32
TOKEN = "bench-auth-token"
PUBLIC = "https://bench.example.com"
FRAME = 160
DELTA_FRAMES = 5  # 100 ms per model delta
RESPONSE_DELTAS = 30  # 3 s responses
BARGE_AT_DELTA = 15


def send_now(ws: Any, text: str) -> None:
    """Write a text frame without a coroutine (websockets' sans-I/O core + the transport):
    the load generator must not add its own scheduling delay to what it measures."""
    ws.protocol.send_text(text.encode())
    ws.send_data()


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


# === server process ==========================================================================
def serve(mock_url: str, model_audio: str, db_path: str) -> None:
    """Run the real Foreman app (with the phone routes) on a free loopback port."""
    import logging
    import socket

    import uvicorn
    from pydantic import SecretStr

    from foreman.api.app import create_app
    from foreman.config import settings_from_dict
    from foreman.io.uvicorn_settings import uvicorn_settings

    logging.basicConfig(level=logging.WARNING)
    # A scratch database (the load generator removes it): never the user's.
    s = settings_from_dict(
        {
            "storage": {"db_path": db_path},
            "calendar": {"ics_path": str(Path(db_path).with_name("calendar.ics"))},
            "realtime": {
                "endpoint": mock_url,
                "turn_detection": {"interrupt_response": False},
            },
            # One client places every call: per-address rate limits would throttle the
            # benchmark, not measure the server.
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
                "model_audio": model_audio,
            }
        )
    )
    app = create_app(s)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, **uvicorn_settings(s), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    profile = os.environ.get("BENCH_PROFILE")
    if profile:  # cProfile the server process; stats written on exit
        import cProfile
        import signal

        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
        cProfile.runctx("server.run(sockets=[sock])", globals(), locals(), profile)
    elif os.environ.get("BENCH_LAG"):  # report event-loop lag and GC pauses every 2 s
        import gc

        gcs: list[float] = []

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gcs.append(time.perf_counter())
            elif gcs:
                gcs[-1] = time.perf_counter() - gcs[-1]

        gc.callbacks.append(on_gc)

        async def main() -> None:
            async def mon() -> None:
                lags: list[float] = []
                last = time.monotonic()
                while True:
                    t = time.monotonic()
                    await asyncio.sleep(0.005)
                    lags.append(time.monotonic() - t - 0.005)
                    if t - last > 2:
                        g = sorted(gcs)
                        print(
                            f"server loop lag p50 {percentile(lags, 50) * 1e3:.2f} p99 "
                            f"{percentile(lags, 99) * 1e3:.2f} max {max(lags) * 1e3:.2f} ms;"
                            f" gc runs {len(g)} max {g[-1] * 1e3 if g else 0:.2f} ms",
                            file=sys.stderr,
                            flush=True,
                        )
                        last = t
                        lags.clear()
                        gcs.clear()

            task = asyncio.get_running_loop().create_task(mon())
            await server.serve(sockets=[sock])
            task.cancel()

        import uvloop

        uvloop.run(main())
    else:
        server.run(sockets=[sock])


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy (user+nice+system+irq+softirq+steal), /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7]
    return busy / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


# === load generator ==========================================================================
@dataclass
class CallState:
    index: int
    number: str
    up_sent: dict[str, float] = field(default_factory=dict)  # payload b64 -> sent at
    out_sent: dict[int, float] = field(default_factory=dict)  # frame tag -> sent at
    barge_t0: float | None = None
    ws: Any = None
    stream_sid: str = ""
    seq: int = 0
    tag: int = 0
    play_end: float = 0.0
    pending_marks: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)


@dataclass
class Samples:
    measuring: bool = False
    inbound: list[float] = field(default_factory=list)
    outbound: list[float] = field(default_factory=list)
    barge: list[float] = field(default_factory=list)
    clears_unmatched: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class Load:
    def __init__(self, n: int, speech: bytes) -> None:
        self.n = n
        self.speech = speech
        self.calls = [CallState(i, f"+1555{i:07d}") for i in range(n)]
        self.by_number = {c.number: c for c in self.calls}
        self.s = Samples()
        self.loop = asyncio.get_running_loop()
        self.running = True

    def spawn(self, coro: Any) -> None:
        t = self.loop.create_task(coro)
        self.s.tasks.add(t)
        t.add_done_callback(self.s.tasks.discard)

    def frames(self, call: CallState, count: int) -> tuple[bytes, list[int]]:
        """`count` frames of speech, each starting with a unique 4-byte tag."""
        out = bytearray()
        tags = []
        for _ in range(count):
            call.tag += 1
            start = (call.tag * FRAME) % (len(self.speech) - FRAME)
            frame = bytearray(self.speech[start : start + FRAME])
            frame[0:4] = struct.pack(">I", call.tag)
            out += frame
            tags.append(call.tag)
        return bytes(out), tags

    # --- lean Realtime mock ---------------------------------------------------------------
    async def mock_handler(self, ws: Any) -> None:
        call: CallState | None = None
        resp: dict[str, Any] = {"id": None, "cancel": False}
        await ws.send(
            json.dumps(
                {
                    "type": "session.created",
                    "event_id": "e0",
                    "session": {"type": "realtime", "id": "sess"},
                }
            )
        )
        async for text in ws:
            if text.startswith('{"type":"input_audio_buffer.append"') or (
                '"input_audio_buffer.append"' in text[:60]
            ):
                msg = json.loads(text)
                if call is not None:
                    t = call.up_sent.pop(msg["audio"], None)
                    if t is not None and self.s.measuring:
                        self.s.inbound.append(time.monotonic() - t)
                continue
            msg = json.loads(text)
            kind = msg.get("type")
            if kind == "session.update":
                session = dict(msg["session"])
                m = re.search(r"number (\+\d+)", session.get("instructions", ""))
                call = self.by_number.get(m.group(1)) if m else None
                session.setdefault("id", "sess")
                await ws.send(
                    json.dumps({"type": "session.updated", "event_id": "e1", "session": session})
                )
            elif kind == "response.create" and call is not None and resp["id"] is None:
                resp["id"] = "started"
                self.spawn(self.converse(ws, call, resp))
            elif kind == "response.cancel":
                resp["cancel"] = True

    async def converse(self, ws: Any, call: CallState, resp: dict[str, Any]) -> None:
        cycle = 0
        await asyncio.sleep((call.index % 50) * 0.02)  # spread the calls over one second
        with contextlib.suppress(Exception):
            while self.running:
                cycle += 1
                rid, iid = f"resp_{call.index}_{cycle}", f"item_{call.index}_{cycle}"
                resp["cancel"] = False
                await ws.send(
                    json.dumps(
                        {
                            "type": "response.created",
                            "event_id": "e",
                            "response": {
                                "id": rid,
                                "object": "realtime.response",
                                "status": "in_progress",
                                "output": [],
                            },
                        }
                    )
                )
                await ws.send(
                    json.dumps(
                        {
                            "type": "response.output_item.added",
                            "event_id": "e",
                            "response_id": rid,
                            "output_index": 0,
                            "item": {
                                "id": iid,
                                "type": "message",
                                "role": "assistant",
                                "status": "in_progress",
                                "content": [],
                            },
                        }
                    )
                )
                barge = cycle % 2 == 0
                t_next = time.monotonic()
                head = (
                    '{"type":"response.output_audio.delta","event_id":"e","response_id":"'
                    + rid
                    + '","item_id":"'
                    + iid
                    + '","output_index":0,"content_index":0,"delta":"'
                )
                for k in range(RESPONSE_DELTAS):
                    if resp["cancel"] or not self.running:
                        break
                    audio, tags = self.frames(call, DELTA_FRAMES)
                    now = time.monotonic()
                    for tag in tags:
                        call.out_sent[tag] = now
                    send_now(ws, head + base64.b64encode(audio).decode() + '"}')
                    if barge and k == BARGE_AT_DELTA:
                        call.barge_t0 = time.monotonic()
                        send_now(
                            ws,
                            json.dumps(
                                {
                                    "type": "input_audio_buffer.speech_started",
                                    "event_id": "e",
                                    "audio_start_ms": 0,
                                    "item_id": f"user_{cycle}",
                                }
                            ),
                        )
                    t_next += DELTA_FRAMES * 0.02
                    await asyncio.sleep(max(0.0, t_next - time.monotonic()))
                status = "cancelled" if resp["cancel"] else "completed"
                await ws.send(
                    json.dumps(
                        {
                            "type": "response.output_audio.done",
                            "event_id": "e",
                            "response_id": rid,
                            "item_id": iid,
                            "output_index": 0,
                            "content_index": 0,
                        }
                    )
                )
                await ws.send(
                    json.dumps(
                        {
                            "type": "response.done",
                            "event_id": "e",
                            "response": {
                                "id": rid,
                                "object": "realtime.response",
                                "status": status,
                                "output": [],
                                "usage": {},
                            },
                        }
                    )
                )
                await asyncio.sleep(1.0)

    # --- lean Twilio callers ---------------------------------------------------------------
    async def dial(self, http: Any, base: str, call: CallState) -> None:
        from websockets.asyncio.client import connect

        from foreman.protocols.twilio.caller_frames import connected_frame, start_frame
        from foreman.protocols.twilio.signature import compute_signature

        call_sid = f"CA{call.index:032x}"
        form = {
            "AccountSid": ACCOUNT,
            "CallSid": call_sid,
            "From": call.number,
            "To": "+15550009999",
            "Direction": "inbound",
            "CallStatus": "ringing",
        }
        sig = compute_signature(TOKEN, PUBLIC + "/twilio/voice", form)
        r = await http.post(
            base + "/twilio/voice",
            content=urlencode(form),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sig,
            },
        )
        r.raise_for_status()
        params = dict(re.findall(r'<Parameter name="([^"]+)" value="([^"]*)"', r.text))
        ws_url = "wss://bench.example.com/twilio/media"
        call.ws = await connect(
            base.replace("http", "ws") + "/twilio/media",
            additional_headers={"X-Twilio-Signature": compute_signature(TOKEN, ws_url, {})},
            max_size=None,
            compression=None,
            ping_interval=None,
        )
        call.stream_sid = f"MZ{call.index:032x}"
        await call.ws.send(connected_frame())
        await call.ws.send(
            start_frame(
                1,
                stream_sid=call.stream_sid,
                call_sid=call_sid,
                account_sid=ACCOUNT,
                custom_parameters=params,
            )
        )
        self.spawn(self.read_caller(call))

    async def read_caller(self, call: CallState) -> None:
        with contextlib.suppress(Exception):
            async for text in call.ws:
                msg = json.loads(text)
                kind = msg["event"]
                now = time.monotonic()
                if kind == "media":
                    audio = base64.b64decode(msg["media"]["payload"])
                    for i in range(0, len(audio), FRAME):
                        (tag,) = struct.unpack_from(">I", audio, i)
                        t = call.out_sent.pop(tag, None)
                        if t is not None and self.s.measuring:
                            self.s.outbound.append(now - t)
                    call.play_end = max(call.play_end, now) + len(audio) / 8000
                elif kind == "mark":
                    name = msg["mark"]["name"]
                    delay = call.play_end - now
                    if delay <= 0:
                        self.echo(call, name)
                    else:
                        call.pending_marks[name] = self.loop.call_later(
                            delay, self._echo_later, call, name
                        )
                elif kind == "clear":
                    if call.barge_t0 is not None:
                        if self.s.measuring:
                            self.s.barge.append(now - call.barge_t0)
                        call.barge_t0 = None
                    else:
                        self.s.clears_unmatched += 1
                    call.play_end = now
                    pending, call.pending_marks = call.pending_marks, {}
                    for name, handle in pending.items():
                        handle.cancel()
                        self.echo(call, name)

    def _echo_later(self, call: CallState, name: str) -> None:
        if call.pending_marks.pop(name, None) is not None:
            self.echo(call, name)

    def echo(self, call: CallState, name: str) -> None:
        with contextlib.suppress(Exception):
            send_now(
                call.ws,
                json.dumps({"event": "mark", "streamSid": call.stream_sid, "mark": {"name": name}}),
            )

    async def uplink(self) -> None:
        """One ticker for all calls: a 20 ms frame per call per cycle, on an absolute clock.
        Calls are spread over the cycle in SLOTS groups, as independent calls would be."""
        slots = 20
        groups = [self.calls[k::slots] for k in range(slots)]
        t_next = time.monotonic()
        while self.running:
            for group in groups:
                for call in group:
                    if call.ws is not None:
                        self.send_frame(call)
                t_next += 0.02 / slots
                await asyncio.sleep(max(0.0, t_next - time.monotonic()))

    async def keep_awake(self) -> None:
        """Wake every millisecond: an idle vCPU is descheduled by the hypervisor and then
        wakes milliseconds late, which would be charged to the server under test."""
        while self.running:  # noqa: ASYNC110 - the wake-ups are the point
            await asyncio.sleep(0.001)

    def send_frame(self, call: CallState) -> None:
        # Hand-built on purpose, like the reader's bare json.loads: the caller's cost per frame
        # is measured with the server's (they share the CPUs), so it stays what it was.
        call.seq += 1
        frame, _ = self.frames(call, 1)
        payload = base64.b64encode(frame).decode()
        text = (
            '{"event":"media","streamSid":"'
            + call.stream_sid
            + '","media":{"track":"inbound","chunk":"'
            + str(call.seq)
            + '","timestamp":"'
            + str(call.seq * 20)
            + '","payload":"'
            + payload
            + '"},"sequenceNumber":"'
            + str(call.seq + 1)
            + '"}'
        )
        call.up_sent[payload] = time.monotonic()
        send_now(call.ws, text)


async def run_one(n: int, duration: float, model_audio: str) -> dict[str, Any]:
    import httpx
    from websockets.asyncio.server import serve as ws_serve

    from foreman.audio.g711 import pcm16_to_ulaw
    from foreman.testing.speech import synthesize

    speech = pcm16_to_ulaw(
        synthesize(
            "This is a benchmark call. The quick brown fox jumps over the lazy dog, twice.", 8000
        )
    )
    load = Load(n, speech)
    mock = await ws_serve(
        load.mock_handler, "127.0.0.1", 0, max_size=None, compression=None, ping_interval=None
    )
    mock_port = next(iter(mock.sockets)).getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    scratch = tempfile.TemporaryDirectory(prefix="foreman-bench-calls-")
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
        [
            sys.executable,
            __file__,
            "serve",
            "--mock-url",
            f"ws://127.0.0.1:{mock_port}/v1/realtime",
            "--model-audio",
            model_audio,
            "--db-path",
            str(Path(scratch.name) / "foreman.db"),
        ],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        port = int(line.split()[1])
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
            for _ in range(100):  # wait until the server answers
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(base + "/api/health")
                    break
                await asyncio.sleep(0.05)
            rss_idle = proc_rss_mb(proc.pid)
            ticker = asyncio.create_task(load.uplink())
            awake = asyncio.create_task(load.keep_awake())
            for i in range(0, n, 25):
                await asyncio.gather(*(load.dial(http, base, c) for c in load.calls[i : i + 25]))
            await asyncio.sleep(3.0)  # every call greeted and streaming
            cpu0, me0, t0 = proc_cpu_s(proc.pid), time.process_time(), time.monotonic()
            busy0 = machine_busy_s()
            load.s.measuring = True
            await asyncio.sleep(duration)
            load.s.measuring = False
            cpu1, me1, t1 = proc_cpu_s(proc.pid), time.process_time(), time.monotonic()
            busy1 = machine_busy_s()
            rss = proc_rss_mb(proc.pid)
            load.running = False
            ticker.cancel()
            awake.cancel()
            for c in load.calls:
                with contextlib.suppress(Exception):
                    await c.ws.close()
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(proc.wait, 10)
        if proc.poll() is None:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        scratch.cleanup()
        mock.close()
        for t in list(load.s.tasks):
            t.cancel()
    wall = t1 - t0
    s = load.s
    ms = 1000.0
    return {
        "calls": n,
        "model_audio": model_audio,
        "wall_s": round(wall, 1),
        "server_core_pct_per_call": round((cpu1 - cpu0) / wall / n * 100, 3),
        "server_core_pct_total": round((cpu1 - cpu0) / wall * 100, 1),
        "loadgen_core_pct_total": round((me1 - me0) / wall * 100, 1),
        # other processes on the machine during the window, in cores (2 = both busy)
        "other_load_cores": round(((busy1 - busy0) - (cpu1 - cpu0) - (me1 - me0)) / wall, 2),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_mb_per_call": round((rss - rss_idle) / n, 3),
        "in_p50_ms": round(percentile(s.inbound, 50) * ms, 2),
        "in_p99_ms": round(percentile(s.inbound, 99) * ms, 2),
        "out_p50_ms": round(percentile(s.outbound, 50) * ms, 2),
        "out_p99_ms": round(percentile(s.outbound, 99) * ms, 2),
        "barge_p50_ms": round(percentile(s.barge, 50) * ms, 2),
        "barge_p99_ms": round(percentile(s.barge, 99) * ms, 2),
        "samples": {"in": len(s.inbound), "out": len(s.outbound), "barge": len(s.barge)},
        "in_mean_ms": round(statistics.fmean(s.inbound) * ms, 2) if s.inbound else None,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| calls | audio | server CPU / call (% core) | server CPU total | load-gen CPU | "
        "other load (cores) | RSS / call (MB) | in p50 / p99 (ms) | out p50 / p99 (ms) | "
        "barge-in p50 / p99 (ms) | samples in / out / barge |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        sm = r["samples"]
        lines.append(
            f"| {r['calls']} | {r['model_audio']} | {r['server_core_pct_per_call']} | "
            f"{r['server_core_pct_total']}% | {r['loadgen_core_pct_total']}% | "
            f"{r['other_load_cores']} | "
            f"{r['rss_mb_per_call']} | {r['in_p50_ms']} / {r['in_p99_ms']} | "
            f"{r['out_p50_ms']} / {r['out_p99_ms']} | {r['barge_p50_ms']} / "
            f"{r['barge_p99_ms']} | {sm['in']} / {sm['out']} / {sm['barge']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd")
    sv = sub.add_parser("serve", help="(internal) run the server process")
    sv.add_argument("--mock-url", required=True)
    sv.add_argument("--model-audio", default="g711_ulaw")
    sv.add_argument("--db-path", required=True)
    p.add_argument("--calls", type=int, nargs="+", default=[10, 100, 300])
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    p.add_argument("--model-audio", default="g711_ulaw", choices=["g711_ulaw", "pcm16"])
    p.add_argument("--json", action="store_true", help="print JSON rows instead of markdown")
    args = p.parse_args(argv)
    if args.cmd == "serve":
        serve(args.mock_url, args.model_audio, args.db_path)
        return 0

    async def run_all() -> list[dict[str, Any]]:
        rows = []
        for n in args.calls:
            row = await run_one(n, args.duration, args.model_audio)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
        return rows

    try:
        import uvloop

        rows = uvloop.run(run_all())
    except ImportError:
        rows = asyncio.run(run_all())
    print(json.dumps(rows, indent=1) if args.json else markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
