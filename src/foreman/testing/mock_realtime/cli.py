"""`foreman mock-realtime`: run the mock Realtime server until SIGINT/SIGTERM.

Prints the WebSocket URL on the first line of stdout (flushed), so scripts and tests can read
it, e.g. `ws://127.0.0.1:9100/v1/realtime`. The default port is 9100, beside `foreman serve`'s
8765.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from foreman.testing.mock_realtime.faults import Faults
from foreman.testing.mock_realtime.scenario import Scenario
from foreman.testing.mock_realtime.server import MockRealtimeServer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="foreman mock-realtime",
        description="Mock OpenAI Realtime server (GA protocol) for tests and local runs.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    # Not 8765: that is `foreman serve`'s, and the two run side by side.
    p.add_argument(
        "--port", type=int, default=9100, help="TCP port (default 9100); 0 picks a free one"
    )
    p.add_argument("--scenario", metavar="FILE", help="scenario file (JSON or TOML)")
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (HTTP 401 otherwise)")
    faults = p.add_argument_group("faults")
    faults.add_argument(
        "--drop-after-events",
        type=int,
        metavar="N",
        help="drop each connection after N server events",
    )
    faults.add_argument(
        "--delay-deltas-ms", type=int, default=0, metavar="MS", help="delay every delta"
    )
    faults.add_argument(
        "--session-time-limit", type=float, metavar="S", help="expire sessions after S seconds"
    )
    return p


async def serve(args: argparse.Namespace, scenario: Scenario | None, faults: Faults) -> None:
    server = MockRealtimeServer(
        scenario, host=args.host, port=args.port, api_key=args.api_key, faults=faults
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print(server.url, flush=True)  # first line: the Realtime URL (scripts read it)
        print(server.live_url, flush=True)  # GPT-Live, on the same port
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the server; 0 after SIGINT/SIGTERM, 1 when it cannot listen, 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = Faults(
            drop_after_events=args.drop_after_events,
            delay_deltas_ms=args.delay_deltas_ms,
            session_time_limit_s=args.session_time_limit,
        )
    except ValueError as exc:
        parser.error(str(exc))
    scenario = None
    if args.scenario:
        try:
            scenario = Scenario.from_file(args.scenario)
        except (OSError, ValueError) as exc:
            print(f"foreman mock-realtime: {exc}", file=sys.stderr)
            return 2
    try:
        asyncio.run(serve(args, scenario, faults))
    except OSError as exc:  # e.g. the port is taken
        print(
            f"foreman mock-realtime: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
