"""One whole phone call through a running server, as `foreman fake-call` makes it: dial through
the signed webhook, let the assistant greet, say something, listen to the answer, hang up.

    caller = FakeTwilioCaller(server_http=URL, public_url=PUBLIC, auth_token=TOKEN,
                              continuous_silence=True)
    result = await converse(caller, caller_sentence(8000))
    result.heard            # µ-law 8 kHz: everything the assistant said, as the caller heard it

"The assistant has finished speaking" is judged as a person on the phone would: nothing
played for `quiet_s`. The caller's uplink carries silence whenever it is not speaking, as
Twilio's does, so the model's turn detection sees the end of the caller's sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from foreman.testing.fake_twilio import FakeTwilioCaller

__all__ = ["CallTimings", "ConversationResult", "converse"]


@dataclass(frozen=True)
class CallTimings:
    """How long the caller waits, in seconds."""

    greeting_s: float = 10.0  # for the assistant to start its greeting (it may not greet)
    answer_s: float = 20.0  # for the assistant to start answering once the caller spoke
    quiet_s: float = 1.0  # of nothing played: the assistant has finished speaking
    longest_s: float = 90.0  # the most the caller listens to in one go


@dataclass(frozen=True)
class ConversationResult:
    call_sid: str
    heard: bytes  # µ-law 8 kHz, everything the assistant said that played
    greeted: bool  # the assistant spoke before the caller did
    answered: bool  # the assistant spoke after the caller did
    ended_by_server: bool  # the server closed the call before the caller hung up
    close_code: int | None
    objections: tuple[str, ...] = ()  # what the server did that Twilio would reject, once each

    @property
    def heard_s(self) -> float:
        return len(self.heard) / 8000


async def converse(
    caller: FakeTwilioCaller, speech_pcm8k: bytes, timings: CallTimings | None = None
) -> ConversationResult:
    """Dial, listen to the greeting, say `speech_pcm8k` (PCM16 LE, 8 kHz), listen to the
    answer, hang up. Raises FakeCallError when the webhook is refused and websockets'
    InvalidStatus when the media socket is; the caller is hung up either way."""
    timings = timings or CallTimings()
    try:
        await caller.dial()
        greeted = await _listen(caller, timings.greeting_s, timings)
        answered = False
        if not caller.closed:
            await caller.play_speech(speech_pcm8k)
            answered = await _listen(caller, timings.answer_s, timings)
        ended_by_server = caller.closed
    finally:
        await caller.aclose()
    return ConversationResult(
        call_sid=caller.call_sid,
        heard=bytes(caller.played),
        greeted=greeted,
        answered=answered,
        ended_by_server=ended_by_server,
        close_code=caller.close_code,
        objections=tuple(dict.fromkeys(caller.validation_errors)),
    )


async def _listen(caller: FakeTwilioCaller, start_within_s: float, timings: CallTimings) -> bool:
    """Wait for the assistant to start speaking, then to finish. False if it said nothing
    within `start_within_s` (or the call ended first)."""
    before = caller.media_received
    try:
        await caller.wait_until(_news(caller, before), start_within_s)
    except TimeoutError:
        return False
    if caller.media_received == before:
        return False
    try:
        async with asyncio.timeout(timings.longest_s):
            await _until_quiet(caller, timings.quiet_s)
    except TimeoutError:
        pass  # it is still talking: the caller has heard enough
    return True


async def _until_quiet(caller: FakeTwilioCaller, quiet_s: float) -> None:
    while not caller.closed:
        if caller.playing:
            await caller.wait_until(lambda: not caller.playing or caller.closed, None)
            continue
        try:
            await caller.wait_until(_news(caller, caller.media_received), quiet_s)
        except TimeoutError:
            return  # nothing new for quiet_s after the last of it played


def _news(caller: FakeTwilioCaller, media_seen: int) -> Callable[[], bool]:
    """True once the server sent more media than `media_seen` messages, or the call ended."""
    return lambda: caller.media_received > media_seen or caller.closed
