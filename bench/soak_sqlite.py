"""How much memory SQLite itself holds under the soak's writes, and after reading history back,
with its default page cache and with the one the stores set (`stores/sqlite/db.py`).

    PYTHONPATH=src python bench/soak_sqlite.py --calls 2000 --rounds 3

Each measurement runs in a fresh process: the embedded stores on a new file, then `--calls`
calls written as the server writes them (the call record begun, the live session, the
conversation and five turns, the session removed, the record finished, a heartbeat every
20 calls), then the history read back (the recent calls, and the turns of every seventh
conversation). SQLite's heap is `sqlite3_memory_used()` of the process's libsqlite3 (the
one Python's `sqlite3` module is linked against); CPU is this process's time per call.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQLITE_DEFAULT_KIB = 2000  # SQLite's own default: `PRAGMA cache_size=-2000`


async def measure(cache_kib: int, calls: int) -> dict[str, float]:
    from foreman.stores import CallRecord, ConversationRecord, SessionRecord, Turn
    from foreman.stores.embedded import open_embedded_stores_now
    from foreman.stores.sqlite import db

    db.CACHE_KIB = cache_kib
    found = ctypes.util.find_library("sqlite3")
    if found is None:
        raise SystemExit("no libsqlite3 found")
    lib = ctypes.CDLL(found)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    stores = open_embedded_stores_now(Path(tempfile.mkdtemp()) / "foreman.db")
    text = "please note that I called, sure, noted. " * 3
    t0 = time.process_time()
    for i in range(calls):
        now, sid, caller = 1.79e9 + i, f"CA{i:032d}", "+15550001111"
        await stores.calls.begin(
            CallRecord(sid, "inbound", caller, "+15550009999", "unknown", False, now)
        )
        await stores.sessions.upsert(SessionRecord(f"s{i}", "phone", "phone", caller, now, "rt"))
        await stores.conversations.create(ConversationRecord(f"conv-{i}", caller, now, now))
        for k in range(5):
            kind = "speech" if k % 2 else "reply"
            await stores.conversations.append(f"conv-{i}", Turn(kind, text, "phone", f"s{i}", now))
        await stores.sessions.remove(f"s{i}")
        await stores.calls.finish(sid, now + 30, "caller hung up")
        if i % 20 == 0:
            await stores.sessions.beat(now)
    cpu_ms = (time.process_time() - t0) * 1000 / calls
    written = lib.sqlite3_memory_used()
    await stores.calls.recent(calls)
    for i in range(0, calls, 7):
        await stores.conversations.turns(f"conv-{i}")
    read = lib.sqlite3_memory_used()
    await stores.aclose()
    return {
        "cache_kib": cache_kib,
        "heap_after_writes_mb": round(written / 1e6, 2),
        "heap_after_reads_mb": round(read / 1e6, 2),
        "cpu_ms_per_call": round(cpu_ms, 3),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # (internal) one measurement
    args = p.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(measure(args.one, args.calls))))
        return 0
    from foreman.stores.sqlite.db import CACHE_KIB

    rows = []
    for r in range(args.rounds):  # alternate which setting runs first
        order = [SQLITE_DEFAULT_KIB, CACHE_KIB][:: 1 if r % 2 == 0 else -1]
        for kib in order:
            command = [sys.executable, __file__, "--one", str(kib), "--calls", str(args.calls)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout))
    print(
        "| page cache per connection | SQLite heap after the writes (MB) | after the reads (MB) "
        "| CPU per call (ms) |"
    )
    print("|---|---:|---:|---:|")
    for row in sorted(rows, key=lambda row: -row["cache_kib"]):
        print(
            f"| {row['cache_kib']} KiB | {row['heap_after_writes_mb']} "
            f"| {row['heap_after_reads_mb']} | {row['cpu_ms_per_call']} |"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
