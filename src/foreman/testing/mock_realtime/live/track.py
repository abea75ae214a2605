"""The mock GPT-Live output track: one `session.output_audio.delta` every `chunk_ms`, paced
in real time for the whole session, carrying queued speech or digital silence, with
`session.output_transcript.delta` pieces as the words play and `session.usage.updated`
every few seconds. The "model" yields (drops the rest of what it is saying) when told the
user talks over it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from foreman.audio.convert import build_plan
from foreman.audio.formats import PCM16_24K, AudioFormat, Encoding
from foreman.audio.jitter import silence_byte
from foreman.testing.mock_realtime.audio_io import speech, split_words

USAGE_EVERY_MS = 5000
RECORDED_MS = 600_000  # `audio_out` keeps the first ten minutes of the track (memory bound)
Send = Callable[[dict[str, Any], bool], Awaitable[bool]]  # (event, with an event_id) -> sent


@dataclass
class _Utterance:
    audio: bytes
    pieces: list[str]
    done: asyncio.Event = field(default_factory=asyncio.Event)
    pos: int = 0
    chunk: int = 0
    cut: bool = False


class OutputTrack:
    def __init__(self, fmt: AudioFormat, chunk_ms: int, send: Send) -> None:
        self.fmt = fmt
        self.chunk_ms = chunk_ms
        self._send = send
        self.track_ms = 0
        self.yields = 0  # times the model stopped talking because the user talked over it
        self.audio_out = bytearray()  # the track as sent, from its start (RECORDED_MS at most)
        self._queue: list[_Utterance] = []
        self._current: _Utterance | None = None

    async def say(self, text: str) -> None:
        """Queue `text` as speech; returns once it has played (or was cut off)."""
        audio = await asyncio.to_thread(speech_in, text, self.fmt)
        frame = self.fmt.bytes_for_ms(self.chunk_ms)
        utt = _Utterance(audio, split_words(text, max(1, -(-len(audio) // frame))))
        self._queue.append(utt)
        await utt.done.wait()

    def user_talks_over(self) -> None:
        """The model yields by itself: the rest of what it was saying is dropped."""
        utt = self._current
        if utt is not None and utt.pos < len(utt.audio):
            utt.pos, utt.cut = len(utt.audio), True
            self.yields += 1

    def _next_chunk(self, frame: int, silence: bytes) -> tuple[bytes, str]:
        if self._current is None and self._queue:
            self._current = self._queue.pop(0)
        utt = self._current
        if utt is None:
            return silence, ""
        chunk = utt.audio[utt.pos : utt.pos + frame]
        chunk += silence[: frame - len(chunk)]
        utt.pos += frame
        piece = utt.pieces[utt.chunk] if not utt.cut and utt.chunk < len(utt.pieces) else ""
        utt.chunk += 1
        if utt.pos >= len(utt.audio):
            self._current = None
            utt.done.set()
        return chunk, piece

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        frame = self.fmt.bytes_for_ms(self.chunk_ms)
        silence = bytes([silence_byte(self.fmt)]) * frame
        next_at = loop.time()
        while True:
            next_at += self.chunk_ms / 1000
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            chunk, piece = self._next_chunk(frame, silence)
            start = self.track_ms
            self.track_ms += self.chunk_ms
            if self.track_ms <= RECORDED_MS:
                self.audio_out += chunk
            delta = base64.b64encode(chunk).decode("ascii")
            # The SDK's OutputAudioDeltaEvent has no event_id (nor offsets on the primary socket).
            if not await self._send({"type": "session.output_audio.delta", "delta": delta}, False):
                return
            if piece:
                transcript = {
                    "type": "session.output_transcript.delta",
                    "delta": piece,
                    "start_ms": start,
                    "end_ms": self.track_ms,
                }
                await self._send(transcript, True)
            if self.track_ms % USAGE_EVERY_MS == 0:
                seconds = self.track_ms / 1000
                await self._send(
                    {"type": "session.usage.updated", "usage": {"seconds": seconds}}, True
                )


def speech_in(text: str, fmt: AudioFormat) -> bytes:
    """`text` spoken in the session format (espeak; cached per text)."""
    if fmt.encoding is not Encoding.PCM16:
        return speech(text, fmt.encoding)
    pcm = speech(text, Encoding.PCM16)  # 24 kHz
    if fmt.sample_rate == 24000:
        return pcm
    plan = build_plan(PCM16_24K, fmt)
    return plan.convert(pcm) + plan.flush()
