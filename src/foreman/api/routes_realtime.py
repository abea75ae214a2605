"""`/api/realtime/*`: start, stop, status and text turns of the API-started voice session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from foreman.exceptions import BackendError, SessionClosed
from foreman.session.supervisor import AlreadyActive, StartRejected, StartRequest, Supervisor

router = APIRouter(prefix="/api/realtime", tags=["realtime"])


class AudioBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_sr: Literal[8000, 16000, 24000, 48000] | None = None
    out_format: str | None = Field(default=None, examples=["pcm16", "g711_ulaw", "g711_alaw"])


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(default=None, min_length=1, max_length=200)
    voice: str | None = Field(default=None, min_length=1, max_length=100)
    audio: AudioBody | None = None
    instructions: str | None = Field(default=None, max_length=20000)
    endpoint: str | None = Field(default=None, min_length=1, max_length=2000)
    transport: Literal["websocket", "webrtc"] | None = None


class SayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)


class Status(BaseModel):
    active: bool
    mode: str
    model: str | None
    since: str | None
    last_error: str | None
    transport: str | None
    endpoint_host: str | None
    session_id: str | None
    counters: dict[str, int | float]
    calls: int


def _supervisor(request: Request) -> Supervisor:
    return request.app.state.supervisor  # type: ignore[no-any-return]


@router.post("/start", response_model=Status, responses={409: {}, 400: {}, 502: {}})
async def start(request: Request, body: Annotated[StartBody | None, Body()] = None) -> Status:
    """Start a realtime session. 409 if one is active, 400 if the request cannot work, 502 if
    the model endpoint failed (the reason is also in `last_error`)."""
    body = body or StartBody()
    req = StartRequest(
        model=body.model,
        voice=body.voice,
        in_sr=body.audio.in_sr if body.audio else None,
        out_format=body.audio.out_format if body.audio else None,
        instructions=body.instructions,
        endpoint=body.endpoint,
        transport=body.transport,
    )
    sup = _supervisor(request)
    try:
        return Status(**await sup.start(req))
    except AlreadyActive as exc:
        raise HTTPException(409, str(exc)) from None
    except StartRejected as exc:
        raise HTTPException(400, str(exc)) from None
    except BackendError as exc:
        raise HTTPException(502, str(exc)) from None


@router.post("/stop", response_model=Status)
async def stop(request: Request) -> Status:
    """Stop the session. Idempotent."""
    return Status(**await _supervisor(request).stop())


@router.get("/status", response_model=Status)
async def status(request: Request) -> Status:
    return Status(**_supervisor(request).status())


@router.post("/say", responses={409: {}})
async def say(request: Request, body: SayBody) -> StreamingResponse:
    """Send a user text turn; the reply streams back as NDJSON lines ({"delta"}…, {"done"})."""
    session = _supervisor(request).session
    if session is None or not session.active:
        raise HTTPException(409, "no active realtime session; POST /api/realtime/start first")

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for piece in session.say(body.text):
                yield (json.dumps(piece) + "\n").encode()
        except SessionClosed as exc:
            yield (
                json.dumps({"done": True, "status": "closed", "error": str(exc)}) + "\n"
            ).encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
