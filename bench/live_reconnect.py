"""How long a GPT-Live call is without its model after a dropped socket, on the mock over
loopback (not a test): the socket is dropped (no close frame, as a network drop), and the
time to the "reconnected" warning and to the new session's first track audio is measured.

    PYTHONPATH=src python bench/live_reconnect.py [--drops 30] [--flapping]

Each drop comes after the last reconnect has held for longer than the window (a new outage,
the first retry waits a uniform draw below `backoff_initial_s`); `--flapping` drops again
at once instead, so the backoff grows within one outage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator

from foreman.audio.formats import PCMU_8K
from foreman.backends import interface as b
from foreman.backends.openai_live import OpenAILiveBackend
from foreman.config import settings_from_dict
from foreman.testing.mock_realtime import MockRealtimeServer, Scenario

WINDOW_S = 1.0  # short, so that a drop after it is a new outage (20 s when flapping)


async def next_audio(events: AsyncIterator[b.BackendEvent]) -> None:
    async for event in events:
        if isinstance(event, b.AssistantAudio):
            return


async def run(drops: int, flapping: bool) -> tuple[list[float], list[float]]:
    reconnected: list[float] = []
    first_audio: list[float] = []
    window_s = 20.0 if flapping else WINDOW_S
    async with MockRealtimeServer(Scenario()) as mock:
        settings = settings_from_dict(
            {
                "realtime": {"api": "live", "recovery": {"reconnect_window_s": window_s}},
                "live": {"endpoint": mock.live_url},
            }
        )
        options = b.BackendOptions(
            model="gpt-live-1", endpoint=mock.live_url, voice="marin", instructions="",
            input_format=PCMU_8K, output_format=PCMU_8K,
        )  # fmt: skip
        backend = OpenAILiveBackend(options, settings.realtime, settings.live)
        await backend.start()
        events = backend.events()
        async with asyncio.TaskGroup() as tg:
            await backend.run(tg)
            for _ in range(drops):
                await next_audio(events)
                if not flapping:  # the last reconnect held: the next drop is a new outage
                    held_until = time.monotonic() + WINDOW_S + 0.1
                    while time.monotonic() < held_until:
                        await next_audio(events)
                began = time.monotonic()
                mock.live_sessions[-1].fault("drop")
                async for event in events:
                    if isinstance(event, b.BackendWarning) and event.code == "reconnected":
                        reconnected.append(time.monotonic() - began)
                        break
                    if isinstance(event, b.Closed):
                        raise SystemExit(f"the backend gave up: {event.error}")
                await next_audio(events)
                first_audio.append(time.monotonic() - began)
            await backend.close()
    return reconnected, first_audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=30)
    parser.add_argument("--flapping", action="store_true")
    args = parser.parse_args()
    reconnected, audio = asyncio.run(run(args.drops, args.flapping))

    def p90(xs: list[float]) -> float:
        return sorted(xs)[int(0.9 * (len(xs) - 1))]

    kind = " (flapping)" if args.flapping else ""
    print(f"drops: {args.drops}{kind}; load {os.getloadavg()[0]:.2f}")
    print(
        f"reconnected: median {statistics.median(reconnected) * 1000:.0f} ms, "
        f"p90 {p90(reconnected) * 1000:.0f} ms"
    )
    print(
        f"first new audio: median {statistics.median(audio) * 1000:.0f} ms, "
        f"p90 {p90(audio) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
