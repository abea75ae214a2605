"""The API's text session as an `AudioEndpoint`: no microphone, no speaker.

User turns arrive as text (`ConversationSession.say`), and the assistant's audio is counted
and handed to whoever streams the turn (`say` with audio) rather than played: it counts as
heard the moment it is delivered, so nothing is ever "still playing" and a barge-in has
nothing to flush. The session ends when `hang_up` or `close` is called.
"""

from __future__ import annotations

import asyncio
from typing import Any

from foreman.audio.formats import AudioFormat
from foreman.endpoints.interface import Heard, HungUp, UserSide


class TextEndpoint:
    kind = "text"
    input_format: AudioFormat | None = None

    def __init__(self) -> None:
        self.output_format: AudioFormat | None = None
        self.audio_bytes = 0
        self._ended = asyncio.Event()
        self._reason = "stopped"

    def set_output_format(self, fmt: AudioFormat) -> None:
        self.output_format = fmt

    async def run(self, tg: asyncio.TaskGroup, user: UserSide) -> None:
        """No device and no socket: one task that reports the end."""
        tg.create_task(self._wait_end(user), name="text-endpoint")

    async def _wait_end(self, user: UserSide) -> None:
        await self._ended.wait()
        res = user.event(HungUp(self._reason))
        if res is not None:
            await res

    def play(self, segment: str, audio: bytes) -> None:
        self.audio_bytes += len(audio)

    def end_segment(self, segment: str) -> None:
        return None

    async def flush(self) -> Heard | None:
        return None

    @property
    def playing(self) -> bool:
        return False

    async def apologize(self) -> None:
        return None  # the reply stream ends with the error

    async def hang_up(self, reason: str) -> None:
        self._reason = reason
        self._ended.set()

    async def close(self) -> None:
        self._ended.set()

    def status(self) -> dict[str, Any]:
        return {"audio_out_bytes": self.audio_bytes}
