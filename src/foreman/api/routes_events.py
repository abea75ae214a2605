"""`GET /api/events`: Server-Sent Events of everything on the bus (approval prompts and
decisions, tool calls and results, session events). The TUI is the first client.

Each event is `id: <seq>` / `event: <kind>` / `data: <json>`. `?kind=approval.` keeps only
kinds starting with that prefix (repeatable). A comment line every `ping_s` keeps proxies
from closing an idle stream. A slow reader loses its oldest events (the bus's bounded queue)
and gets an `events.dropped` event saying how many. When the server shuts down, the stream sends
what is still queued (the last calls' records among it) and ends: the response completes,
so a client sees the stream close rather than a broken connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from foreman.api.openapi import EventStreamResponse, errors
from foreman.bus import BusClosed, EventBus, Published

router = APIRouter(tags=["events"])
PING_S = 15.0


def format_sse(item: Published) -> bytes:
    return _sse(item.seq, item.kind, item.to_dict())


def _sse(seq: int, kind: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, ensure_ascii=False, default=str)
    return f"id: {seq}\nevent: {kind}\ndata: {data}\n\n".encode()


async def sse_stream(
    bus: EventBus, prefixes: list[str], ping_s: float = PING_S
) -> AsyncIterator[bytes]:
    sub = bus.subscribe(kinds=prefixes)
    dropped = 0
    try:
        yield b": connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(sub.get(), timeout=ping_s)
            except TimeoutError:
                yield b": ping\n\n"
                continue
            except BusClosed:
                return
            if sub.dropped != dropped:
                lost, dropped = sub.dropped - dropped, sub.dropped
                notice = {"seq": 0, "kind": "events.dropped", "at": event.at}
                yield _sse(0, "events.dropped", {**notice, "data": {"count": lost}})
            yield format_sse(event)
    finally:
        sub.close()


def _bus(request: Request) -> EventBus:
    """The app's bus: `app.state.bus`, else the tool services' bus; 503 when neither."""
    bus: EventBus | None = getattr(request.app.state, "bus", None)
    if bus is None:
        tools: Any = getattr(request.app.state, "tools", None)
        bus = tools.bus if tools is not None else None
    if bus is None:
        raise HTTPException(503, "the event bus is not running")
    return bus


@router.get(
    "/api/events",
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": "`id: <seq>`, `event: <kind>`, `data: <json>` per event, until "
            "the server shuts down"
        },
        **errors({503: "the event bus is not running in this server"}),
    },
)
async def events(
    request: Request, kind: Annotated[list[str] | None, Query()] = None
) -> StreamingResponse:
    return StreamingResponse(
        sse_stream(_bus(request), kind or []),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
