"""Pre-rendered phone clips: what a caller hears when no model can speak to them.

The clips ship in the package (`foreman/defaults/clips/*.ulaw`: raw 8 kHz µ-law, what a
Twilio media frame carries), rendered once from text by `scripts/render-clips` (espeak-ng and
sox), so playing one needs neither a model nor a speech engine:

* `apology`: no model could be reached when the call started (endpoint down, not answering,
  refusing, or no key): the caller hears it, then the call is hung up through REST.
* `goodbye`: the server is shutting down and the call's time to finish ran out, or the
  model went away mid-call and could not be brought back (the endpoint's `apologize`).

Both are played by the call's `TwilioEndpoint` (paced, with marks), so "heard" means
Twilio's mark came back, not that the bytes were sent.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Final, Literal

from foreman.config import PACKAGED_DEFAULTS
from foreman.endpoints.interface import EndpointEvent, HungUp
from foreman.endpoints.twilio import TwilioEndpoint, clip_limit_s
from foreman.exceptions import ConversationEnded

log = logging.getLogger("foreman.call")

ClipName = Literal["apology", "goodbye"]
CLIPS_DIR: Final = PACKAGED_DEFAULTS / "clips"
HANG_UP_LIMIT_S: Final = 15.0


@cache
def clip(name: ClipName) -> bytes:
    """The clip's µ-law bytes (read once)."""
    return (CLIPS_DIR / f"{name}.ulaw").read_bytes()


class _Listener:
    """The caller's side while only a clip plays: their audio goes nowhere; a hang-up is
    noted."""

    def __init__(self) -> None:
        self.hung_up = asyncio.Event()

    async def audio(self, audio: bytes) -> None:
        return None

    async def audio_b64(self, audio_b64: str) -> None:
        return None

    def event(self, event: EndpointEvent) -> None:
        if isinstance(event, HungUp):
            self.hung_up.set()


class _Over(Exception):
    """Ends the clip's task group once the call is hung up."""


async def apologize_and_hang_up(endpoint: TwilioEndpoint, ulaw: bytes, reason: str) -> bool:
    """For a call no model will answer: play `ulaw` to the caller, then hang up through
    Twilio REST (`endpoint.hang_up`). Returns whether the caller heard the clip to the end
    (False: they hung up first, or the marks never came back in time)."""
    listener = _Listener()
    heard = False
    try:
        async with asyncio.TaskGroup() as tg:
            await endpoint.run(tg, listener)
            playing = tg.create_task(endpoint.play_clip(ulaw), name=f"clip>{endpoint.call_sid}")
            hung_up = tg.create_task(listener.hung_up.wait())
            await asyncio.wait({playing, hung_up}, timeout=clip_limit_s(ulaw))
            heard = playing.done() and not playing.cancelled()
            playing.cancel()
            hung_up.cancel()
            if not listener.hung_up.is_set():
                # Bounded: the REST client has its own limit, but a caller must never
                # keep a refused call's task alive.
                async with asyncio.timeout(HANG_UP_LIMIT_S):
                    await endpoint.hang_up(reason)
            raise _Over
    except* (_Over, TimeoutError):
        pass
    except* ConversationEnded:  # the socket went away while the clip was being sent
        pass
    finally:
        await endpoint.close()
    if not heard:
        log.info("%s: the caller did not hear the whole apology", endpoint.call_sid)
    return heard
