"""Per-frame cost of a `ConversationSession`'s two audio paths, through its public interface
(not a test): the user's audio from the endpoint to the backend (the `UserSide` the session
hands its endpoint) and the model's audio from the backend's events to `endpoint.play`.
The backend and the endpoint are in-memory stand-ins that only count, so what is measured
is the session's own work per frame.

    PYTHONPATH=src python bench/session_frames.py

Run it in two checkouts to compare. CPU time, best of five runs of 50,000 frames each.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

from foreman.audio.formats import PCM16_24K, PCMU_8K, AudioFormat
from foreman.backends import interface as b
from foreman.endpoints import interface as e
from foreman.policy.context import CallContext, Channel, Role
from foreman.session.conversation import ConversationSession

FRAMES = 50_000
RUNS = 5


class CountingBackend:
    """Enough of a `VoiceBackend`: counts the user's audio, then sends `FRAMES` deltas."""

    def __init__(self, input_format: AudioFormat, *, continuous: bool) -> None:
        self.capabilities = b.Capabilities(
            server_barge_in=continuous,
            turn_based=not continuous,
            needs_continuous_input=continuous,
            b64_passthrough=True,
            final_transcripts=not continuous,
        )
        self.input_format = input_format
        self.output_format = PCMU_8K
        self.pushed = 0
        self.user_done = asyncio.Event()
        self.read_s = 0.0

    async def run(self, tg: asyncio.TaskGroup) -> None:
        return None

    def status(self) -> b.BackendStatus:
        return b.BackendStatus("bench", "none")

    async def push_audio(self, audio: bytes) -> None:
        self.pushed += 1

    async def push_audio_b64(self, audio_b64: str) -> None:
        self.pushed += 1

    async def events(self) -> AsyncIterator[b.BackendEvent]:
        await self.user_done.wait()
        audio = bytes([0x7F]) * 160  # 20 ms of µ-law
        began = time.process_time()
        for _ in range(FRAMES):
            yield b.AssistantAudio(audio, "item_1", "resp_1")
        self.read_s = time.process_time() - began

    async def close(self) -> None:
        return None


class CountingEndpoint:
    """Enough of an `AudioEndpoint`: sends `FRAMES` user frames, counts what it is given."""

    playing = False

    def __init__(self, input_format: AudioFormat, backend: CountingBackend, *, b64: bool):
        self.input_format = input_format
        self._backend = backend
        self._b64 = b64
        self.played = 0
        self.user_s = 0.0

    def set_output_format(self, fmt: AudioFormat) -> None:
        return None

    async def run(self, tg: asyncio.TaskGroup, user: e.UserSide) -> None:
        tg.create_task(self._feed(user))

    async def _feed(self, user: e.UserSide) -> None:
        frame = bytes(self.input_format.bytes_for_ms(20))
        frame_b64 = base64.b64encode(frame).decode()
        began = time.process_time()
        if self._b64:
            for _ in range(FRAMES):
                await user.audio_b64(frame_b64)
        else:
            for _ in range(FRAMES):
                await user.audio(frame)
        self.user_s = time.process_time() - began
        self._backend.user_done.set()

    def play(self, segment: str, audio: bytes) -> None:
        self.played += 1

    def end_segment(self, segment: str) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def hang_up(self, reason: str) -> None:
        return None

    async def close(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {}


class NoHistory:
    """A history hook that keeps nothing (the reader then counts each segment's audio)."""

    def typed(self, text: str) -> None: ...

    def utterance(self, role: str, text: str, heard_ms: int | None, audio_ms: int | None) -> None:
        return None

    def tool_call(self, call_id: str, name: str, arguments: str) -> None: ...

    def tool_result(self, call_id: str, output: str) -> None: ...

    def ended(self, reason: str) -> None: ...


async def one_run(
    user_format: AudioFormat,
    model_format: AudioFormat,
    *,
    b64: bool,
    continuous: bool,
    history: bool,
) -> tuple[float, float]:
    backend = CountingBackend(model_format, continuous=continuous)
    endpoint = CountingEndpoint(user_format, backend, b64=b64)
    ctx = CallContext("bench", Channel.PHONE, Role.UNKNOWN)
    session = ConversationSession(
        ctx, backend, endpoint,  # type: ignore[arg-type]
        history=NoHistory() if history else None,
    )  # fmt: skip
    await session.run()
    assert backend.pushed >= FRAMES and endpoint.played == FRAMES
    return endpoint.user_s / FRAMES * 1e6, backend.read_s / FRAMES * 1e6


def best(
    user: AudioFormat, model: AudioFormat, b64: bool, continuous: bool, history: bool
) -> tuple[float, float]:
    runs = [
        asyncio.run(one_run(user, model, b64=b64, continuous=continuous, history=history))
        for _ in range(RUNS)
    ]
    return min(r[0] for r in runs), min(r[1] for r in runs)


# name, the endpoint's format, the backend's, base64 in, continuous input, a history hook
CASES: list[tuple[str, AudioFormat, AudioFormat, bool, bool, bool]] = [
    ("phone, µ-law passthrough (base64 straight on)", PCMU_8K, PCMU_8K, True, False, True),
    ("phone, µ-law to PCM16 24 kHz (decoded, converted)", PCMU_8K, PCM16_24K, True, False, True),
    ("PCM16, no history", PCM16_24K, PCM16_24K, False, False, False),
    ("continuous backend (Live), µ-law passthrough", PCMU_8K, PCMU_8K, True, True, True),
]


def main() -> None:
    print("| case | user audio in, µs per frame | model audio out, µs per frame |")
    print("|---|---:|---:|")
    for name, user, model, b64, continuous, history in CASES:
        user_us, read_us = best(user, model, b64, continuous, history)
        print(f"| {name} | {user_us:.3f} | {read_us:.3f} |")


if __name__ == "__main__":
    main()
