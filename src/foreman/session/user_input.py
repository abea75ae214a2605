"""The user's audio on its way to the backend, for one `ConversationSession`.

Chosen once per session, because it runs 50 times a second per call: base64 goes straight
to the backend when both sides allow (phone passthrough), else it is decoded and converted
only when the formats differ. Gaps the endpoint reports are filled with silence, so the
model's turn detection still sees the pause; a backend that needs continuous input
(GPT-Live) also gets silence whenever the endpoint sends none.
"""

from __future__ import annotations

import asyncio
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from foreman.audio.convert import build_plan
from foreman.audio.formats import AudioFormat
from foreman.audio.jitter import silence_byte
from foreman.backends import interface as b
from foreman.clock import Clock
from foreman.endpoints import interface as e

__all__ = ["INPUT_FRAME_MS", "INPUT_STALL_S", "InputStats", "UserInput"]

INPUT_FRAME_MS: Final = 20
INPUT_STALL_S: Final = 0.06  # no user audio for this long: a continuous backend gets silence


class InputStats(Protocol):
    """The counters the input path keeps (the session's `SessionStats`)."""

    bad_input: int
    silence_filled_ms: int


class UserInput:
    """The path from the endpoint's user audio to the backend. `side` is what the endpoint
    is given; `fill_gap` and `keep_flowing` make up for audio that did not come."""

    __slots__ = (
        "_backend", "_clock", "_endpoint", "_in_plan", "_passthrough_b64", "_stats",
        "last_input_at", "side",
    )  # fmt: skip

    def __init__(
        self,
        backend: b.VoiceBackend,
        endpoint: e.AudioEndpoint,
        stats: InputStats,
        clock: Clock,
        on_event: Callable[[e.EndpointEvent], Awaitable[None] | None],
    ) -> None:
        self._backend = backend
        self._endpoint = endpoint
        self._stats = stats
        self._clock = clock
        self.last_input_at = 0.0
        in_fmt = endpoint.input_format
        self._in_plan = build_plan(in_fmt, backend.input_format) if in_fmt else None
        self._passthrough_b64 = bool(
            self._in_plan is not None
            and self._in_plan.is_passthrough
            and backend.capabilities.b64_passthrough
        )
        # Bound paths chosen once: base64 straight to the backend when both sides allow,
        # else decoded and converted; for a backend that needs continuous input, every
        # chunk also marks the time it came.
        self.side: e.UserSide = _UserSide(
            self.push,
            backend.push_audio_b64 if self._passthrough_b64 else self._audio_b64_decoded,
            on_event,
        )
        if backend.capabilities.needs_continuous_input:
            self.side = _TimedUserSide(self.side, self)

    async def _audio_b64_decoded(self, audio_b64: str) -> None:
        """User audio as base64 when it cannot pass through: decode, convert, push."""
        try:
            audio = binascii.a2b_base64(audio_b64)
        except (binascii.Error, ValueError):
            self._stats.bad_input += 1  # a bad frame never ends a call
            return
        await self.push(audio)

    async def push(self, audio: bytes) -> None:
        plan = self._in_plan
        if plan is not None and not plan.is_passthrough:
            audio = plan.convert(audio)
            if not audio:
                return
        await self._backend.push_audio(audio)

    async def fill_gap(self, ms: int) -> None:
        """The user's audio stalled: the model hears the missing time as silence, so its
        turn detection still sees the pause."""
        fmt = self._endpoint.input_format
        if fmt is None:
            return
        self._stats.silence_filled_ms += ms
        silence = _silence(fmt, ms)
        if self._passthrough_b64:
            audio_b64 = binascii.b2a_base64(silence, newline=False).decode()
            await self._backend.push_audio_b64(audio_b64)
        else:
            await self.push(silence)

    async def keep_flowing(self) -> None:
        """For a backend whose timeline only moves with input audio: silence whenever the
        endpoint sends nothing (a text session, a stalled phone line)."""
        backend = self._backend
        frame = _silence(backend.input_format, INPUT_FRAME_MS)
        frame_s = INPUT_FRAME_MS / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at + frame_s, loop.time() - frame_s)
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self._clock.monotonic() - self.last_input_at >= INPUT_STALL_S:
                self._stats.silence_filled_ms += INPUT_FRAME_MS
                await backend.push_audio(frame)


@dataclass(frozen=True, slots=True)
class _UserSide:
    """What the session gives its endpoint: bound paths chosen once, no branching per frame."""

    audio: Callable[[bytes], Awaitable[None]]
    audio_b64: Callable[[str], Awaitable[None]]
    event: Callable[[e.EndpointEvent], Awaitable[None] | None]


class _TimedUserSide:
    """Also notes when user audio last came (the silence pump fills the gaps)."""

    __slots__ = ("_clock", "_inner", "_input", "event")

    def __init__(self, inner: e.UserSide, user_input: UserInput) -> None:
        self._inner = inner
        self._input = user_input
        self._clock = user_input._clock
        self.event = inner.event

    async def audio(self, audio: bytes) -> None:
        self._input.last_input_at = self._clock.monotonic()
        await self._inner.audio(audio)

    async def audio_b64(self, audio_b64: str) -> None:
        self._input.last_input_at = self._clock.monotonic()
        await self._inner.audio_b64(audio_b64)


def _silence(fmt: AudioFormat, ms: int) -> bytes:
    return bytes([silence_byte(fmt)]) * fmt.bytes_for_ms(ms)
