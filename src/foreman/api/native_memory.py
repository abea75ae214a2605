"""The C allocator under the server (glibc's malloc only; elsewhere every call does nothing).

glibc gives each new thread that allocates its own malloc arena, up to eight per core
(https://www.gnu.org/software/libc/manual/html_node/Memory-Allocation-Tunables.html,
`glibc.malloc.arena_max`), and an arena keeps the pages of its busiest moment. The server's
threads are the worker threads of `asyncio.to_thread` (every SQLite statement, file reads):
they run little and mostly wait on the disk or on the GIL, so many arenas buy them nothing
but memory. `limit_arenas` caps them once, at start-up (as `MALLOC_ARENA_MAX=2` in the
environment would, without needing the environment); an operator's own
`MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` setting is left to win. `trim` hands the free pages
of every arena back to the system (`malloc_trim(3)`), for when the server is idle.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

ARENA_MAX = 2  # the main arena and one for every worker thread to share
_M_ARENA_MAX = -8  # from glibc's malloc.h
_limit_lock = threading.Lock()
_limited: bool | None = None  # None: not tried yet


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The process's own C library when it is glibc with `mallopt` and `malloc_trim`."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded: the C library Python runs on
    except OSError:
        return None
    wanted = ("gnu_get_libc_version", "mallopt", "malloc_trim")
    if not all(hasattr(libc, name) for name in wanted):
        return None  # musl and others: their allocators have no arenas to cap
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


def limit_arenas(arena_max: int = ARENA_MAX) -> bool:
    """Cap glibc's malloc arenas at `arena_max`, once per process (later calls return the
    first answer). True when the cap is in force; False on another C library or when the
    environment already chose (`MALLOC_ARENA_MAX`, `GLIBC_TUNABLES`)."""
    global _limited
    with _limit_lock:
        if _limited is None:
            _limited = _apply_arena_max(arena_max)
        return _limited


def _apply_arena_max(arena_max: int) -> bool:
    if "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = glibc()
    if libc is None:
        return False
    if libc.mallopt(_M_ARENA_MAX, arena_max) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) refused: malloc arenas stay uncapped", arena_max)
        return False
    return True


def trim() -> bool:
    """Give the free pages of every arena back to the system; True when some were.
    Blocking (it walks the heap): call it on a worker thread."""
    libc = glibc()
    return libc is not None and libc.malloc_trim(0) == 1
