"""From an accepted media socket to a running `CallSession` (issue 4 items 2, 3, 7, 10).

`serve_media_stream` reads the stream up to `start`, redeems the single-use stream token
from `start.customParameters` and only then builds and starts a backend: a socket without
a valid token never costs a model session (reference twilio-media-streams.md §3.3).
`TwilioServices` is what the HTTP routes and the media socket share (`app.state.twilio`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from foreman.audio.formats import AudioFormat
from foreman.backends.base import BackendOptions, VoiceBackend
from foreman.clock import Clock, SystemClock
from foreman.config import Settings, realtime_refusal
from foreman.exceptions import BackendError
from foreman.policy.context import CallContext, Role
from foreman.protocols.twilio.messages import BadMessage, Start, Stop
from foreman.protocols.twilio.stream import TwilioStream
from foreman.protocols.twilio.tokens import StreamTokens
from foreman.session.bus import EventBus
from foreman.session.call import CallInfo, CallSession, Dispatcher, TwilioTransport
from foreman.session.calls import CallRecord, CallRegistry, CallStore
from foreman.session.identity import identify

log = logging.getLogger("foreman.call")

BackendFactory = Callable[[BackendOptions], VoiceBackend]

START_TIMEOUT_S = 10.0  # Twilio sends `start` right after `connected` (§2.2)
POLICY_VIOLATION = 1008  # WebSocket close code for a refused token (RFC 6455 §7.4.1)
INTERNAL_ERROR = 1011

# Offered when no tool dispatcher is wired, so a phone call can always be ended.
END_CALL_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "end_call",
    "description": "Hang up the phone call after saying goodbye.",
    "parameters": {
        "type": "object",
        "properties": {"reason": {"type": "string"}},
        "additionalProperties": False,
    },
}


@dataclass
class OutboundIntent:
    """A call we placed: what it is for, kept server-side until its stream starts."""

    ref: str
    to: str
    purpose: str
    created: float
    call_sid: str = ""


@dataclass
class TwilioServices:
    """Everything the Twilio routes need; lives in `app.state.twilio`."""

    settings: Settings
    backend_factory: BackendFactory
    tokens: StreamTokens
    registry: CallRegistry
    bus: EventBus
    rest: Any = None  # foreman.io.twilio_rest.TwilioRest, or None when not configured
    dispatcher: Dispatcher | None = None
    clock: Clock = field(default_factory=SystemClock)
    outbound: dict[str, OutboundIntent] = field(default_factory=dict)

    async def aclose(self) -> None:
        """At shutdown: end live calls (REST hang-up) and close the REST client."""
        for session in self.registry.active():
            await session.hangup_now("server shutting down")
        for session in self.registry.active():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.wait_closed(), 5.0)
        if self.rest is not None:
            await self.rest.aclose()
        await self.registry.drain()

    def missing_for_outbound(self) -> list[str]:
        """Config keys an outbound call needs that are not set."""
        tw = self.settings.twilio
        missing = [
            f"twilio.{k}"
            for k, v in (
                ("account_sid", tw.account_sid),
                ("auth_token", tw.auth_token),
                ("from_number", tw.from_number),
                ("public_url", tw.public_url),
            )
            if not v
        ]
        if self.rest is None and not missing:
            missing.append("twilio REST client")
        return missing


def build_twilio_services(
    settings: Settings,
    bus: EventBus,
    backend_factory: BackendFactory,
    dispatcher: Dispatcher | None = None,
    *,
    rest: Any = None,
    clock: Clock | None = None,
    call_log: CallStore | None = None,
) -> TwilioServices:
    """Build the phone bridge's services. Logs loudly when signature checks are off."""
    tw = settings.twilio
    if not tw.validate_signatures:
        log.warning(
            "!!! [twilio] validate_signatures = false: Twilio webhooks and media sockets are "
            "NOT authenticated. Anyone who can reach this server can start billed model "
            "sessions. Use this for local development only. !!!"
        )
    elif not tw.auth_token and not tw.public_url:
        log.info("phone calls are off: set [twilio] public_url, account_sid and TWILIO_AUTH_TOKEN")
    elif not tw.auth_token:
        log.warning("[twilio] auth_token is not set: every Twilio request will be refused (403)")
    if rest is None and tw.account_sid and tw.auth_token:
        from foreman.io.twilio_rest import TwilioRest

        rest = TwilioRest(tw.account_sid, tw.auth_token.get_secret_value(), api_base=tw.api_base)
    return TwilioServices(
        settings=settings,
        backend_factory=backend_factory,
        tokens=StreamTokens(tw.stream_token_ttl_s),
        registry=CallRegistry(bus, store=call_log),
        bus=bus,
        rest=rest,
        dispatcher=dispatcher,
        clock=clock or SystemClock(),
    )


def backend_options(
    settings: Settings, ctx: CallContext, info: CallInfo, tools: list[dict[str, Any]]
) -> BackendOptions:
    """Per-call backend settings: phone formats, caller context, purpose, tools."""
    rt = settings.realtime
    fmt = AudioFormat.from_name(settings.twilio.model_audio)
    who = {
        Role.OWNER: f"the owner, {ctx.caller_name}",
        Role.CONTACT: f"a known contact, {ctx.caller_name}",
        Role.UNKNOWN: "an unknown caller",
    }[ctx.role]
    if not ctx.verified:
        who += " (identity not verified)"
    parts = [rt.instructions, f"You are on a phone call with {who}, number {ctx.caller_id}."]
    if info.direction == "outbound":
        parts.append(f"You placed this call. Its purpose: {info.purpose or 'not given'}.")
        greeting = "Introduce yourself briefly and say why you are calling."
    elif ctx.role is Role.UNKNOWN:
        greeting = "Greet the caller briefly and ask how you can help."
    else:
        greeting = f"Greet {ctx.caller_name} by name, briefly, and ask how you can help."
    parts.append("When the conversation is over, say goodbye and call end_call.")
    return BackendOptions(
        model=rt.model,
        endpoint=rt.endpoint,
        voice=rt.voice,
        instructions=" ".join(parts),
        input_format=fmt,
        output_format=fmt,
        tools=tools,
        greeting=greeting,
    )


async def _read_until_start(stream: TwilioStream, transport: TwilioTransport) -> Start | str:
    """Read frames until `start`. Returns the Start, or a reason to give up."""
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            frame = await transport.receive()
            if frame is None:
                return "socket closed before start"
            for event in stream.receive(frame):
                if isinstance(event, Start):
                    return event
                if isinstance(event, Stop):
                    return "stop before start"
                if isinstance(event, BadMessage) and event.fatal:
                    return f"bad start: {event.reason}"


async def serve_media_stream(
    services: TwilioServices, transport: TwilioTransport, *, signed: bool
) -> str:
    """Run one media socket to its end; returns the reason it ended.

    `signed` says the upgrade's X-Twilio-Signature was checked (the route refuses a bad one
    before accepting). The token is checked here, before any backend exists.
    """
    stream = TwilioStream()
    try:
        got = await _read_until_start(stream, transport)
    except TimeoutError:
        got = f"no start within {START_TIMEOUT_S:.0f} s"
    if isinstance(got, str):
        log.warning("= media socket refused: %s", got)
        await transport.close(POLICY_VIOLATION, got)
        return got
    start = got
    params = start.custom_parameters
    now = services.clock.monotonic()
    direction = "outbound" if params.get("direction") == "outbound" else "inbound"
    ref = params.get("ref", "") if direction == "outbound" else start.call_sid
    intent: OutboundIntent | None = None
    if direction == "outbound":
        intent = services.outbound.pop(ref, None)
    ok = services.tokens.redeem(params.get("token", ""), ref, now)
    if ok and intent is not None and intent.call_sid and intent.call_sid != start.call_sid:
        ok = False
    if (
        not ok
        or (direction == "outbound" and intent is None)
        or start.call_sid in services.registry
    ):
        reason = "invalid or reused stream token"
        log.warning("= media socket for %s refused: %s", start.call_sid, reason)
        services.bus.publish("call.refused", call_sid=start.call_sid, reason=reason)
        await transport.close(POLICY_VIOLATION, reason)
        return reason

    number = intent.to if intent is not None else params.get("caller", "")
    ctx = identify(
        number,
        services.settings.identity,
        session_id=f"call-{start.call_sid}",
        verified=signed,
    )
    info = CallInfo(
        call_sid=start.call_sid,
        stream_sid=start.stream_sid,
        ctx=ctx,
        direction=direction,
        from_=services.settings.twilio.from_number if intent else number,
        to=intent.to if intent else params.get("to", ""),
        purpose=intent.purpose if intent else "",
    )
    refusal = realtime_refusal(services.settings)
    if refusal is not None:  # checked before a backend exists: a refused call costs nothing
        log.warning("= call %s refused: %s", start.call_sid, refusal)
        await transport.close(POLICY_VIOLATION, "realtime sessions are turned off")
        now = services.clock.wall()
        services.registry.record(
            CallRecord(
                info.call_sid,
                direction,
                info.from_,
                info.to,
                str(ctx.role),
                ctx.verified,
                now,
                now,
                refusal,
                info.purpose,
            )
        )
        return refusal
    disp = services.dispatcher
    tools = disp.tool_definitions(ctx) if disp is not None else [END_CALL_TOOL]  # type: ignore[attr-defined]
    backend = services.backend_factory(backend_options(services.settings, ctx, info, tools))
    started = services.clock.wall()
    try:
        await backend.start()
    except (BackendError, OSError, TimeoutError) as exc:
        reason = f"backend failed to start: {exc}"
        log.error("= call %s: %s", start.call_sid, reason)
        await backend.close()
        await transport.close(INTERNAL_ERROR, "voice backend unavailable")
        services.registry.record(
            CallRecord(
                info.call_sid,
                direction,
                info.from_,
                info.to,
                str(ctx.role),
                ctx.verified,
                started,
                services.clock.wall(),
                reason,
                info.purpose,
            )
        )
        return reason
    session = CallSession(
        info,
        stream,
        transport,
        backend,
        config=services.settings.twilio,
        bus=services.bus,
        dispatcher=disp,
        rest=services.rest,
        clock=services.clock,
        on_end=services.registry.finish,
    )
    services.registry.add(session)
    return await session.run()
