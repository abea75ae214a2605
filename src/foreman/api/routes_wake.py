"""`/api/wake/*`: the wake sentinel's status and switch, and a WAV fed through it.

The sentinel listens on the desk microphone (`foreman.desk.service`); `feed` runs a WAV
through the very same path, for tests and for a machine without a microphone. Its body is a
WAV file (any integer PCM, any rate: it is converted), bounded by `[limits]
api_max_body_bytes` like every body.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from foreman.api.openapi import errors
from foreman.desk.service import DeskService, WakeUnavailable
from foreman.exceptions import AudioFormatError

router = APIRouter(prefix="/api/wake", tags=["wake"])


class LastTrigger(BaseModel):
    at: str
    text: str


class WakeStatus(BaseModel):
    enabled: bool
    listening: bool
    detector: str | None
    device: str | None
    speaker: str | None
    phrase: str
    mode: str
    last_trigger: LastTrigger | None
    triggers: int
    false_starts: int
    last_error: str | None


class FeedAnswer(BaseModel):
    segments: int
    heard: list[str]
    woke: bool
    status: WakeStatus


def _desk(request: Request) -> DeskService:
    return request.app.state.desk  # type: ignore[no-any-return]


@router.get("/status", response_model=WakeStatus)
async def status(request: Request) -> dict[str, Any]:
    """The sentinel: on or off, listening or paused (voice mode, no microphone), which
    recogniser, which microphone, the last wake-up and the counts."""
    return _desk(request).status()


@router.post("/enable", response_model=WakeStatus)
async def enable(request: Request) -> dict[str, Any]:
    """Listen for the wake phrase. Idempotent."""
    return _desk(request).enable()


@router.post("/disable", response_model=WakeStatus)
async def disable(request: Request) -> dict[str, Any]:
    """Stop listening (the microphone is closed unless voice mode runs). Idempotent."""
    return _desk(request).disable()


@router.post(
    "/feed",
    response_model=FeedAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a WAV file (integer PCM, mono or not, any rate; any Content-Type)",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    responses=errors(
        {
            400: "the body is not a WAV file Foreman can read",
            409: "wake is disabled, voice mode is on, or there is no phrase recogniser",
        }
    ),
)
async def feed(request: Request) -> dict[str, Any]:
    """Run a WAV through the sentinel as if the microphone had heard it. Answers once every
    speech segment in it was recognised; `woke` says whether voice mode started."""
    desk = _desk(request)
    body = await request.body()
    try:
        result = await desk.feed(body)
    except AudioFormatError as exc:
        raise HTTPException(400, f"not a WAV file Foreman can read: {exc}") from None
    except WakeUnavailable as exc:
        raise HTTPException(409, str(exc)) from None
    return {
        "segments": result.segments,
        "heard": result.heard,
        "woke": result.woke,
        "status": desk.status(),
    }
