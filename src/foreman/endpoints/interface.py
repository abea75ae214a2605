"""The `AudioEndpoint` interface: the user's side of a conversation session.

An endpoint reads the user's side in a task of its own and hands everything to the
session's `UserSide`: audio straight to `audio`/`audio_b64` (the hot path, 50 frames a
second per call: no queue, no generator step, no event object), everything else as events,
in order. It plays the assistant's audio
(`play` / `end_segment`, paced by the endpoint itself), stops playback at once on a barge-in
(`flush`, which says exactly how far playback got), and reports what was really heard: the
position comes from the sink (Twilio mark echoes, a speaker callback), never from the wall
clock. A phone call, the API's text session, the desk speaker and a browser are endpoints;
the session logic is the same for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from foreman.audio.formats import AudioFormat

__all__ = [
    "AudioEndpoint",
    "Drained",
    "Dtmf",
    "EndpointEvent",
    "Heard",
    "HungUp",
    "InputGap",
    "UserSide",
]


@dataclass(frozen=True, slots=True)
class InputGap:
    """The user's audio stalled for `ms` before the next chunk (a network hiccup); the
    model should hear the missing time as silence."""

    ms: int


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Heard:
    """Playback reached `ms` into `segment` (as confirmed by the sink)."""

    segment: str
    ms: int


@dataclass(frozen=True, slots=True)
class Drained:
    """Everything played so far has been heard; nothing is queued."""


@dataclass(frozen=True, slots=True)
class HungUp:
    """The user's side ended (the last event)."""

    reason: str


EndpointEvent = InputGap | Dtmf | Heard | Drained | HungUp


class UserSide(Protocol):
    """What an endpoint delivers to (the session). Audio is in the endpoint's
    `input_format`; `event` may raise ConversationEnded (a hang-up ends the session)."""

    def audio(self, audio: bytes) -> Awaitable[None]: ...

    def audio_b64(self, audio_b64: str) -> Awaitable[None]:
        """The same as base64 text (passed on undecoded when both sides allow)."""
        ...

    def event(self, event: EndpointEvent) -> Awaitable[None] | None: ...


@runtime_checkable
class AudioEndpoint(Protocol):
    """One user-side channel of one session. `set_output_format`, then `run(tg, user)`;
    `play` and `flush` may be called from any task."""

    kind: str  # "phone", "text", "speaker", ...
    input_format: AudioFormat | None  # None: no audio comes from this endpoint

    def set_output_format(self, fmt: AudioFormat) -> None:
        """The format `play` will receive (the backend's output); set before `run`."""
        ...

    async def run(self, tg: asyncio.TaskGroup, user: UserSide) -> None:
        """Start the endpoint's tasks in the session's task group (its reader, which
        delivers to `user` until `HungUp`, and e.g. its pacer), then return. A protocol
        failure raises ConversationEnded with the reason."""
        ...

    def play(self, segment: str, audio: bytes) -> None:
        """Queue assistant audio of `segment`; returns at once (the endpoint paces it).
        Segment "" is filler (a continuous track's silence between replies): played, but
        never reported as playing or heard."""
        ...

    def end_segment(self, segment: str) -> None:
        """No more audio comes for `segment` (pad and flush what is buffered)."""
        ...

    async def flush(self) -> Heard | None:
        """Barge-in: stop playback now and drop everything queued. Returns where playback
        stopped (the first segment not heard to its end and how much of it was heard), or
        None when nothing was playing or queued."""
        ...

    @property
    def playing(self) -> bool:
        """Audio other than filler is queued or not yet confirmed heard (a `Drained`
        event follows when that changes)."""
        ...

    async def apologize(self) -> None:
        """The model is gone for good: tell the user so before `hang_up`, if this endpoint
        has a way to (a phone call hears a pre-rendered clip). Bounded; never raises."""
        ...

    async def hang_up(self, reason: str) -> None:
        """End the user's side on purpose (a phone call is hung up); never raises."""
        ...

    async def close(self) -> None:
        """Release everything; idempotent, never raises."""
        ...

    def status(self) -> dict[str, Any]:
        """Counters and identifiers, safe to show."""
        ...
