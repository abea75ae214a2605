"""`/api/realtime/*`: start, stop, status and text turns of the owner's voice session."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from foreman.api.openapi import NDJSONResponse, errors
from foreman.exceptions import BackendError, SessionClosed
from foreman.session.conversation import ConversationSession
from foreman.session.registry import AlreadyActive, SessionRegistry, StartRejected, StartRequest
from foreman.session.text_turns import TurnInProgress

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
    audio: bool = Field(
        default=False,
        description='also stream the assistant\'s audio as {"audio": base64, "format"} lines',
    )


class Status(BaseModel):
    active: bool
    mode: str
    model: str | None
    since: str | None
    last_error: str | None
    transport: str | None
    endpoint_host: str | None
    session_id: str | None
    provider_session_id: str | None
    counters: dict[str, int | float]
    calls: int
    backend: str | None = Field(default=None, description="openai-realtime | openai-live | local")
    usage: dict[str, Any] = Field(
        default_factory=dict,
        description="what the provider bills, when it says (GPT-Live: seconds, cost_usd)",
    )
    components: dict[str, Any] | None = Field(
        default=None,
        description="the offline engine's VAD, STT, LLM (and where it runs), TTS, load times",
    )


def _sessions(request: Request) -> SessionRegistry:
    return request.app.state.sessions  # type: ignore[no-any-return]


def _desk(request: Request) -> ConversationSession:
    session = _sessions(request).desk
    if session is None or not session.active:
        raise HTTPException(409, "no active realtime session; POST /api/realtime/start first")
    return session


NO_SESSION = "no active session (POST /api/realtime/start first)"


@router.post(
    "/start",
    response_model=Status,
    responses=errors(
        {
            400: "the request cannot work as given (endpoint, transport, audio format, no "
            "API key where the server runs, the server is shutting down); the detail says what "
            "to change",
            409: "a realtime session is already active",
            502: "the model endpoint refused or failed (also in `last_error`)",
        }
    ),
)
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
    sessions = _sessions(request)
    try:
        return Status(**await sessions.start_desk(req))
    except AlreadyActive as exc:
        raise HTTPException(409, str(exc)) from None
    except StartRejected as exc:
        raise HTTPException(400, str(exc)) from None
    except BackendError as exc:
        raise HTTPException(502, str(exc)) from None


@router.post("/stop", response_model=Status)
async def stop(request: Request) -> Status:
    """Stop the session. Idempotent."""
    return Status(**await _sessions(request).stop_desk())


@router.get("/status", response_model=Status)
async def status(request: Request) -> Status:
    return Status(**_sessions(request).status())


@router.post(
    "/say",
    response_class=NDJSONResponse,
    responses={
        200: {
            "description": 'NDJSON lines: {"delta"}…, {"tool", "call_id"}, {"audio", "format"} '
            '(when asked), then {"done", "transcript", "status"}',
        },
        **errors({409: f"{NO_SESSION}, or a text turn is already running"}),
    },
)
async def say(request: Request, body: SayBody) -> StreamingResponse:
    """Send a user text turn; the reply streams back as NDJSON lines. One turn at a time
    (409 while one runs); if the client goes away, the reply is stopped."""
    session = _desk(request)
    try:
        turn = session.say(body.text, audio=body.audio)
    except (TurnInProgress, SessionClosed) as exc:
        raise HTTPException(409, str(exc)) from None
    fmt = session.backend.output_format.config_name

    async def lines() -> AsyncIterator[bytes]:
        async for piece in turn:
            yield (json.dumps(_wire(piece, fmt)) + "\n").encode()

    # Runs when the response ends, completed or not: a client that went away leaves no
    # reply running into the next turn.
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        background=BackgroundTask(session.abandon_turn),
    )


@router.post("/end-turn", response_model=dict[str, bool], responses=errors({409: NO_SESSION}))
async def end_turn(request: Request) -> dict[str, bool]:
    """Push-to-talk release: the user's spoken turn is over. `ended` is false when the
    session detects turns itself (server VAD)."""
    return {"ended": await _desk(request).end_user_turn()}


def _wire(piece: dict[str, Any], fmt: str) -> dict[str, Any]:
    if "audio" in piece:
        return {"audio": base64.b64encode(piece["audio"]).decode("ascii"), "format": fmt}
    return piece
