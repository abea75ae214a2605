"""Per-frame cost of the Realtime backend's two hot paths, over an in-memory socket (not a
test): the caller's audio out (`push_audio_b64`, one 20 ms µ-law frame) and the model's audio
in (one `response.output_audio.delta` read by `events()` and turned into `AssistantAudio`).

    PYTHONPATH=src python bench/backend_frames.py

Run it in two checkouts to compare: it uses only the backend's public interface. The best of
five repeats is reported, so load from other processes shows less than in a whole-call run.
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
from foreman.backends.openai_realtime import OpenAIRealtimeBackend
from foreman.config import settings_from_dict

FRAMES = 20_000
SESSION = {"id": "sess_bench", "audio": {"input": {"format": {"type": "audio/pcmu"}},
                                         "output": {"format": {"type": "audio/pcmu"}}}}  # fmt: skip


class MemorySocket:
    """Enough of a websockets ClientConnection: the handshake, then scripted frames."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent = 0
        self._handshake = [
            json.dumps({"type": "session.created", "event_id": "e1", "session": SESSION}),
            json.dumps({"type": "session.updated", "event_id": "e2", "session": SESSION}),
        ]

    async def recv(self) -> str:
        return self._handshake.pop(0)

    async def send(self, text: str) -> None:
        self.sent += 1

    async def close(self) -> None:
        self.close_code = 1000

    def __aiter__(self) -> AsyncIterator[str]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str]:
        for frame in self.frames:
            yield frame


def delta(n: int) -> str:
    audio = base64.b64encode(bytes([0x7F]) * 800).decode()  # 100 ms of µ-law
    return json.dumps(
        {"type": "response.output_audio.delta", "event_id": f"d{n}", "response_id": "resp_1",
         "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": audio}
    )  # fmt: skip


async def backend_with(frames: list[str]) -> tuple[OpenAIRealtimeBackend, MemorySocket]:
    ws = MemorySocket(frames)

    async def connect(*args: Any, **kw: Any) -> MemorySocket:
        return ws

    settings = settings_from_dict({"realtime": {"endpoint": "ws://127.0.0.1:9/v1/realtime"}})
    options = b.BackendOptions(
        model="gpt-realtime-2.1", endpoint="ws://127.0.0.1:9/v1/realtime", voice="marin",
        instructions="", input_format=PCMU_8K, output_format=PCMU_8K,
    )  # fmt: skip
    backend = OpenAIRealtimeBackend(options, settings.realtime, connector=connect)
    await backend.start()
    return backend, ws


async def push_us() -> float:
    backend, _ = await backend_with([])
    chunk = base64.b64encode(bytes([0xFF]) * 160).decode()
    push = backend.push_audio_b64
    began = time.process_time()
    for _ in range(FRAMES):
        await push(chunk)
    return (time.process_time() - began) / FRAMES * 1e6


async def receive_us() -> float:
    created = json.dumps(
        {"type": "response.created", "event_id": "c", "response": {"id": "resp_1",
         "object": "realtime.response", "status": "in_progress", "output": []}}
    )  # fmt: skip
    frames = [created, *(delta(n) for n in range(FRAMES))]
    backend, _ = await backend_with(frames)
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
