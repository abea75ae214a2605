"""`foreman` command line (filled in by the realtime core work)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    print("foreman: not built yet")
    return 1
