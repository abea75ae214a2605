"""Twilio routes: the voice webhook, the media WebSocket and outbound calls.

Thin: each route checks its input, then hands over to `foreman.phone.bridge`. The app
factory includes `router` and sets `app.state.twilio = build_phone_services(...)`.

* `POST /twilio/voice`: 503 naming the settings when this server cannot check Twilio's
  signatures (no auth token or no public URL). X-Twilio-Signature over
  `public_url + /twilio/voice` and every form field
  (https://www.twilio.com/docs/usage/security); 403 when missing or wrong, 413 for more form
  fields than `[limits]` allows, 400 for a CallSid, From or To Twilio never sends (no token is
  issued for it). Answers `<Connect><Stream>` TwiML with the caller (split over several
  parameters when long), the call sid and a single-use stream token.
* `WS /twilio/media`: the upgrade's signature (over the `wss://` URL from the TwiML; see
  https://www.twilio.com/docs/voice/media-streams) is checked before the socket is accepted
  (a refusal is a 403 to the handshake); the token is checked on `start`, before any model
  session is opened.
* `POST /api/calls {to, purpose?}`: places a call through Twilio REST whose TwiML streams
  back here; `GET /api/calls` lists live calls and recent records.
* `POST /api/calls/{call_sid}/hangup`: ends a live call now (Twilio REST, then the stream);
  404 when no call with that sid is live.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from starlette.websockets import WebSocketDisconnect, WebSocketState

from foreman.api.openapi import errors
from foreman.events import CallIncoming, CallPlaced
from foreman.exceptions import SessionClosed
from foreman.phone.bridge import PhoneServices, serve_media_stream
from foreman.policy.context import Channel
from foreman.protocols.twilio.signature import (
    public_http_url,
    public_ws_url,
    validate_request,
    validate_ws_upgrade,
)
from foreman.protocols.twilio.twiml import connect_stream_twiml, say_hangup_twiml
from foreman.protocols.twilio.webhook import (
    FormTooLarge,
    InvalidWebhook,
    inbound_call,
    parse_form,
    split_parameter,
)
from foreman.session.registry import SHUTDOWN_REASON
from foreman.stores.records import OutboundIntent

__all__ = ["router"]

log = logging.getLogger("foreman.call")

router = APIRouter()

VOICE_PATH = "/twilio/voice"
MEDIA_PATH = "/twilio/media"
SIGNATURE_HEADER = "x-twilio-signature"
E164 = r"^\+[1-9][0-9]{6,14}$"
CALL_SID = r"^CA[0-9A-Za-z]{1,64}$"
NO_BRIDGE = "the phone bridge is not set up in this server"
CLOSING_SAY = "Sorry, this line is restarting. Please call back in a minute."


def _services(app: Any) -> PhoneServices:
    svc = getattr(app.state, "twilio", None)
    if svc is None:
        raise HTTPException(503, NO_BRIDGE)
    return svc  # type: ignore[no-any-return]


def _public_base(svc: PhoneServices, headers: Any, fallback: str) -> str:
    """The URL Twilio uses to reach us: config first (TLS-terminating proxies rewrite what we
    see, and the signature covers the URL Twilio called)."""
    if svc.settings.twilio.public_url:
        return svc.settings.twilio.public_url
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip()
    host = headers.get("x-forwarded-host", "").split(",")[0].strip()
    if proto and host:
        return f"{proto}://{host}"
    return fallback.rstrip("/")


# --- voice webhook ------------------------------------------------------------------------
@router.post(VOICE_PATH, include_in_schema=False)
async def voice_webhook(request: Request) -> Response:
    svc = _services(request.app)
    missing = svc.missing_for_inbound()
    if missing:
        log.warning("< %s refused: phone calls need %s", VOICE_PATH, ", ".join(missing))
        return Response(
            f"phone calls are not configured in this server: set {', '.join(missing)} "
            "(see docs/phone.md)",
            status_code=503,
            media_type="text/plain",
        )
    tw = svc.settings.twilio
    try:
        # The body's size is bounded by the limits middleware; its field count here, before
        # anything is parsed.
        params = parse_form(await request.body(), svc.settings.limits.webhook_max_form_fields)
    except FormTooLarge as exc:
        log.warning("< %s refused: %s", VOICE_PATH, exc)
        return Response(str(exc), status_code=413, media_type="text/plain")
    base = _public_base(svc, request.headers, str(request.base_url))
    if tw.validate_signatures:
        url = public_http_url(base, VOICE_PATH)
        if request.url.query:
            url += "?" + request.url.query
        if not validate_request(
            tw.auth_token.get_secret_value(), url, params, request.headers.get(SIGNATURE_HEADER)
        ):
            log.warning("refused at %s: missing or wrong X-Twilio-Signature", VOICE_PATH)
            return Response("invalid signature", status_code=403, media_type="text/plain")
    try:
        call = inbound_call(params)
    except InvalidWebhook as exc:  # checked before a token exists: nothing is issued for it
        log.warning("< %s refused: %s", VOICE_PATH, exc)
        return Response(str(exc), status_code=400, media_type="text/plain")
    if svc.registry.closing:  # shutting down: Twilio says so and hangs up, no stream opens
        log.info("%s refused: %s", call.call_sid, SHUTDOWN_REASON)
        return Response(say_hangup_twiml(CLOSING_SAY), media_type="text/xml")
    token = await svc.tokens.issue(call.call_sid, svc.clock.monotonic())
    if token is None:  # a replayed webhook: this CallSid already has its stream
        log.warning("%s refused: it already has a media stream", call.call_sid)
        return Response("this call already has a media stream", 409, media_type="text/plain")
    twiml = connect_stream_twiml(
        public_ws_url(base, MEDIA_PATH),
        {
            "token": token,
            "call_sid": call.call_sid,
            **split_parameter("caller", call.caller),
            **split_parameter("to", call.to),
            "direction": "inbound",
        },
    )
    log.info("%s incoming from %s to %s", call.call_sid, call.caller, call.to)
    svc.bus.publish(CallIncoming(call.call_sid, call.caller, call.to))
    return Response(twiml, media_type="text/xml")


# --- media socket ---------------------------------------------------------------------------
class StarletteTwilioTransport:
    """The FastAPI WebSocket as a `TwilioTransport` (raw ASGI messages: no per-frame
    exceptions for a normal hang-up)."""

    __slots__ = ("_closed", "_ws")

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._closed = False

    async def receive(self) -> str | bytes | None:
        if self._closed:
            return None
        msg = await self._ws.receive()
        if msg["type"] == "websocket.receive":
            text = msg.get("text")
            return text if text is not None else (msg.get("bytes") or b"")
        self._closed = True
        return None

    async def send_text(self, text: str) -> None:
        if self._closed:
            raise SessionClosed("the Twilio socket is closed")
        try:
            await self._ws.send({"type": "websocket.send", "text": text})
        except (OSError, RuntimeError, WebSocketDisconnect) as exc:
            self._closed = True
            raise SessionClosed("the Twilio socket is closed") from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._closed = True
        ws = self._ws
        if ws.application_state is WebSocketState.DISCONNECTED:
            return
        # Already gone: closing is best effort.
        with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
            await ws.close(code, reason[:120])


@router.websocket(MEDIA_PATH)
async def media_socket(ws: WebSocket) -> None:
    svc: PhoneServices | None = getattr(ws.app.state, "twilio", None)
    if svc is None:
        await ws.close(1011)
        return
    tw = svc.settings.twilio
    signed = False
    missing = svc.missing_for_inbound()
    if missing:
        log.warning("< %s upgrade refused: phone calls need %s", MEDIA_PATH, ", ".join(missing))
        await ws.close(1008)  # before accept: the client gets HTTP 403
        return
    if tw.validate_signatures:
        base = _public_base(svc, ws.headers, f"{ws.url.scheme}://{ws.url.netloc}")
        if not validate_ws_upgrade(
            tw.auth_token.get_secret_value(),
            public_ws_url(base, MEDIA_PATH),
            ws.headers.get(SIGNATURE_HEADER),
        ):
            log.warning("refused at %s: missing or wrong X-Twilio-Signature", MEDIA_PATH)
            await ws.close(1008)  # before accept: the client gets HTTP 403
            return
        signed = True
    await ws.accept()
    await serve_media_stream(svc, StarletteTwilioTransport(ws), signed=signed)


# --- outbound calls -----------------------------------------------------------------------
class PlaceCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, Field(pattern=E164, description="E.164 number, e.g. +14155550123")]
    purpose: Annotated[str, Field(max_length=400)] = ""


@router.post(
    "/api/calls",
    status_code=201,
    responses=errors(
        {
            400: "outbound calls need Twilio configured; the detail names the missing settings",
            502: "Twilio refused the call (its reason is in the detail)",
            503: NO_BRIDGE,
        }
    ),
)
async def place_call(body: PlaceCall, request: Request) -> dict[str, Any]:
    """Call `to` through Twilio; the callee is bridged to the assistant like an inbound call."""
    svc = _services(request.app)
    missing = svc.missing_for_outbound()
    if missing:
        raise HTTPException(
            400, f"outbound calls need Twilio configured; missing: {', '.join(missing)}"
        )
    tw = svc.settings.twilio
    now = svc.clock.monotonic()
    await svc.intents.purge(now)  # intents whose stream never came (unanswered calls)
    ref = "out_" + secrets.token_hex(8)
    token = await svc.tokens.issue(ref, now)
    twiml = connect_stream_twiml(
        public_ws_url(tw.public_url, MEDIA_PATH),
        {"token": token or "", "ref": ref, "caller": body.to, "direction": "outbound"},
    )
    await svc.intents.put(OutboundIntent(ref=ref, to=body.to, purpose=body.purpose, created=now))
    try:
        call_sid = await svc.rest.create_call(to=body.to, from_=tw.from_number, twiml=twiml)
    except Exception as exc:
        await svc.intents.take(ref)
        log.warning("outbound call to %s failed: %s", body.to, exc)
        raise HTTPException(502, f"Twilio refused the call: {exc}") from None
    await svc.intents.attach_call_sid(ref, call_sid)
    log.info("%s placed to %s: %s", call_sid, body.to, body.purpose or "no purpose given")
    svc.bus.publish(CallPlaced(call_sid, body.to, body.purpose))
    return {"call_sid": call_sid, "to": body.to, "purpose": body.purpose, "status": "queued"}


@router.get("/api/calls", responses=errors({503: NO_BRIDGE}))
async def list_calls(request: Request) -> dict[str, Any]:
    """Live calls and the most recent finished ones (newest last)."""
    svc = _services(request.app)
    return {
        "active": [s.status() for s in svc.registry.of_channel(Channel.PHONE)],
        "recent": await svc.records.recent(50),
    }


@router.post(
    "/api/calls/{call_sid}/hangup",
    status_code=202,
    responses=errors(
        {
            404: "no live call with this sid",
            422: "not a CallSid",
            503: "the phone bridge is not set up in this server",
        }
    ),
)
async def hang_up_call(
    call_sid: Annotated[str, Path(pattern=CALL_SID, description="the call's Twilio CallSid")],
    request: Request,
) -> dict[str, str]:
    """End a live call now, without a goodbye: Twilio REST completes the call, then the
    stream closes. Answers once the hang-up is under way; `session.ended` and
    `call.recorded` follow on the event stream."""
    svc = _services(request.app)
    session = svc.live_call(call_sid)
    if session is None or not session.active:
        raise HTTPException(404, f"no live call with sid {call_sid!r}")
    await session.hang_up_now("hung up by the owner")
    return {"call_sid": call_sid, "status": "hanging up"}
