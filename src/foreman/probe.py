"""`rt-probe` dev harness (filled in by the realtime core work)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    print("rt-probe: not built yet")
    return 1
