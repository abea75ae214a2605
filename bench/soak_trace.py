"""`bench/soak.py --tracemalloc`: where the server's Python memory went between two idle
moments, by the line that allocated it (`tracemalloc` snapshots, diffed).

The server process starts `tracemalloc` before anything is imported for serving and takes
a snapshot on each SIGUSR1 (the load sends one at the baseline and after each phase, while
the server is idle): the first is kept, every later one is diffed against it and the lines
that grew most are printed as `TRACE` lines, then `TRACED`. Tracing slows the server down
(every allocation records its stack): its RSS and timings are not the soak's figures, so
run it as a separate soak.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import tracemalloc
from typing import Any

TOP = 12
FRAMES = 1


def start() -> None:
    tracemalloc.start(FRAMES)


def install(loop: asyncio.AbstractEventLoop) -> None:
    """On SIGUSR1: snapshot; print the growth since the first snapshot."""
    first: list[tracemalloc.Snapshot] = []

    def snap() -> None:
        gc.collect()  # garbage the collector has not reached yet is not a leak
        ignore = [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        ]
        snapshot = tracemalloc.take_snapshot().filter_traces(ignore)
        if not first:
            first.append(snapshot)
        else:
            for stat in snapshot.compare_to(first[0], "lineno")[:TOP]:
                frame = stat.traceback[0]
                print(
                    f"TRACE {stat.size_diff} {stat.count_diff} {frame.filename}:{frame.lineno}",
                    flush=True,
                )
        total = sum(s.size for s in snapshot.statistics("filename"))
        print(f"TRACED {total}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, snap)


def parse(line: str, into: list[dict[str, Any]]) -> bool:
    """A `TRACE` line into `into`; True when `line` was one of ours (`TRACE`/`TRACED`)."""
    words = line.split()
    if words[:1] == ["TRACE"]:
        into.append({"bytes": int(words[1]), "blocks": int(words[2]), "where": words[3]})
        return True
    if words[:1] == ["TRACED"]:
        into.append({"traced_bytes": int(words[1])})
        return True
    return False


def markdown(traces: list[dict[str, Any]]) -> list[str]:
    """The last diff (the whole soak against the baseline) as a table."""
    ends = [i for i, t in enumerate(traces) if "traced_bytes" in t]
    if len(ends) < 2:
        return []
    last = traces[ends[-2] + 1 : ends[-1]]
    lines = [
        "",
        f"Python memory traced: {traces[ends[0]]['traced_bytes'] // 1024} KiB at the baseline, "
        f"{traces[ends[-1]]['traced_bytes'] // 1024} KiB at the end; grown most since the "
        "baseline:",
        "",
        "| KiB | blocks | where |",
        "|---:|---:|---|",
    ]
    lines += [f"| {t['bytes'] / 1024:+.1f} | {t['blocks']:+d} | {t['where']} |" for t in last]
    return lines
