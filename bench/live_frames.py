"""Per-frame cost of the GPT-Live backend's two hot paths, over an in-memory socket (not a
test): the caller's audio out (`push_audio_b64`, one 20 ms µ-law frame) and the model's
track in (one `session.output_audio.delta`, speech, read by `events()` and turned into
`AssistantAudio`).

    PYTHONPATH=src python bench/live_frames.py

Run it in two checkouts to compare (it uses only the backend's public interface): point
PYTHONPATH at the other checkout's `src`. The best of five repeats is reported.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from foreman.audio.formats import PCMU_8K
from foreman.backends import interface as b
from foreman.backends.openai_live import OpenAILiveBackend
from foreman.config import settings_from_dict

FRAMES = 20_000
URL = "ws://127.0.0.1:9/v1/live/sessions"
STARTED = json.dumps(
    {"type": "session.started", "event_id": "e1", "session": {
        "id": "live_bench", "model": "gpt-live-1", "expires_at": 2_000_000_000,
        "audio": {"format": {"type": "audio/pcmu", "rate": 8000}}}}
)  # fmt: skip

CLOSED = json.dumps({"type": "session.closed", "event_id": "e2", "reason": "close_requested"})


class MemorySocket:
    """Enough of a websockets ClientConnection: the handshake, then scripted frames."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent = 0
        self._handshake = [STARTED]

    async def recv(self) -> str:
        if self._handshake:
            return self._handshake.pop(0)
        return CLOSED  # after session.close

    async def send(self, text: str) -> None:
        self.sent += 1

    async def close(self) -> None:
        self.close_code = 1000

    def __aiter__(self) -> AsyncIterator[str]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str]:
        for frame in self.frames:
            yield frame


def delta() -> str:
    # 100 ms of loud µ-law (0x10 decodes to about -10 000): speech, one reply all along.
    audio = base64.b64encode(bytes([0x10]) * 800).decode()
    return json.dumps({"type": "session.output_audio.delta", "delta": audio})


async def backend_with(frames: list[str]) -> OpenAILiveBackend:
    ws = MemorySocket(frames)

    async def connect(*args: Any, **kw: Any) -> MemorySocket:
        return ws

    settings = settings_from_dict({"realtime": {"api": "live"}, "live": {"endpoint": URL}})
    options = b.BackendOptions(
        model="gpt-live-1", endpoint=URL, voice="marin", instructions="",
        input_format=PCMU_8K, output_format=PCMU_8K,
    )  # fmt: skip
    backend = OpenAILiveBackend(options, settings.realtime, settings.live, connector=connect)
    await backend.start()
    return backend


async def push_us() -> float:
    backend = await backend_with([])
    chunk = base64.b64encode(bytes([0xFF]) * 160).decode()
    push = backend.push_audio_b64
    began = time.process_time()
    for _ in range(FRAMES):
        await push(chunk)
    return (time.process_time() - began) / FRAMES * 1e6


async def receive_us() -> float:
    frame = delta()
    backend = await backend_with([frame] * FRAMES)
    count = 0
    began = time.process_time()
    events = backend.events()
    async for event in events:
        if type(event) is b.AssistantAudio:
            count += 1
            if count == FRAMES:
                break
    took = time.process_time() - began
    await events.aclose()  # type: ignore[attr-defined]
    await backend.close()
    assert count == FRAMES, count
    return took / FRAMES * 1e6


def main() -> None:
    push = min(asyncio.run(push_us()) for _ in range(5))
    receive = min(asyncio.run(receive_us()) for _ in range(5))
    print("| path | µs per frame (best of 5) |")
    print("|---|---:|")
    print(f"| push_audio_b64, 20 ms µ-law | {push:.2f} |")
    print(f"| events(): one output_audio.delta -> AssistantAudio | {receive:.2f} |")


if __name__ == "__main__":
    main()
