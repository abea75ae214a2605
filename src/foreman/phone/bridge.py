"""From an accepted media socket to a running conversation session.

`serve_media_stream` reads the stream up to `start`, lets `StreamAdmission` decide (the
single-use stream token from `start.customParameters`, the outbound intent, one stream per
CallSid), and only then builds and starts a backend: a socket without a valid token never
costs a model session. `PhoneServices` is what the HTTP routes and the media socket share
(`app.state.twilio`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from foreman.audio.formats import AudioFormat
from foreman.backends.interface import BackendOptions, Capabilities
from foreman.bus import EventBus
from foreman.clock import Clock, SystemClock
from foreman.config import Settings, local_engine_selected, realtime_refusal, voice_target
from foreman.endpoints.twilio import TwilioEndpoint, TwilioTransport
from foreman.events import CallRefused, SessionFailed
from foreman.exceptions import BackendError
from foreman.phone.clips import apologize_and_hang_up, clip
from foreman.phone.identity import identify
from foreman.phone.records import CallRecords
from foreman.policy.context import CallContext, Role
from foreman.protocols.twilio.admission import Admitted, Refused, StreamAdmission
from foreman.protocols.twilio.messages import BadMessage, Start, Stop
from foreman.protocols.twilio.stream import TwilioStream
from foreman.session.conversation import ConversationSession
from foreman.session.registry import (
    SHUTDOWN_REASON,
    BackendFactory,
    SessionRegistry,
    ToolCatalog,
    model_key_problem,
)
from foreman.session.tool_jobs import ToolHandler
from foreman.stores.embedded import Stores, memory_stores
from foreman.stores.interfaces import OutboundIntentStore, StreamTokenStore
from foreman.stores.records import CallRecord

log = logging.getLogger("foreman.call")
session_log = logging.getLogger("foreman.session")

START_TIMEOUT_S: Final = 10.0  # Twilio sends `start` right after `connected`
POLICY_VIOLATION: Final = 1008  # WebSocket close code for a refused token (RFC 6455 7.4.1)
SERVICE_RESTART: Final = 1012  # https://www.iana.org/assignments/websocket/websocket.xhtml
# A model that yields by itself on barge-in (GPT-Live) is never followed by a `clear`: what
# is queued at Twilio still plays after the model stopped, so that queue stays shallow.
SERVER_BARGE_IN_MAX_LEAD_MS: Final = 200

# Offered when no tool dispatcher is wired, so a phone call can always be ended.
END_CALL_TOOL: Final[dict[str, Any]] = {
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
class PhoneServices:
    """Everything the Twilio routes need; lives in `app.state.twilio`."""

    settings: Settings
    backend_factory: BackendFactory
    tokens: StreamTokenStore
    intents: OutboundIntentStore
    registry: SessionRegistry
    records: CallRecords
    bus: EventBus
    rest: Any = None  # foreman.io.twilio_rest.TwilioRest, or None when not configured
    tools: ToolHandler | None = None
    catalog: ToolCatalog | None = None
    clock: Clock = field(default_factory=SystemClock)
    # What a caller hears when no model can answer (8 kHz µ-law; see `phone.clips`).
    apology: bytes = field(default_factory=lambda: clip("apology"))
    goodbye: bytes = field(default_factory=lambda: clip("goodbye"))  # said at shutdown

    async def aclose(self) -> None:
        """At shutdown (after the registry hung up every call): close the REST client and
        write the last records."""
        if self.rest is not None:
            await self.rest.aclose()
        await self.records.flush()

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

    def missing_for_inbound(self) -> list[str]:
        """Settings an incoming call needs that are not set: the auth token that checks
        Twilio's signatures and the public URL they are computed over. None are needed while
        signature checks are off (local development only)."""
        tw = self.settings.twilio
        if not tw.validate_signatures:
            return []
        missing = [] if tw.auth_token else ["twilio.auth_token (or TWILIO_AUTH_TOKEN)"]
        return missing if tw.public_url else [*missing, "twilio.public_url"]

    def live_call(self, call_sid: str) -> ConversationSession | None:
        return self.registry.get(call_session_id(call_sid))


def call_session_id(call_sid: str) -> str:
    return f"call-{call_sid}"


def build_phone_services(
    settings: Settings,
    bus: EventBus,
    backend_factory: BackendFactory,
    registry: SessionRegistry,
    *,
    tools: ToolHandler | None = None,
    catalog: ToolCatalog | None = None,
    rest: Any = None,
    clock: Clock | None = None,
    stores: Stores | None = None,
) -> PhoneServices:
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
    elif not tw.auth_token or not tw.public_url:
        unset = "auth_token (TWILIO_AUTH_TOKEN)" if not tw.auth_token else "public_url"
        log.warning("[twilio] %s is not set: incoming calls will be answered 503", unset)
    if rest is None and tw.account_sid and tw.auth_token:
        from foreman.io.twilio_rest import TwilioRest

        rest = TwilioRest(tw.account_sid, tw.auth_token.get_secret_value(), api_base=tw.api_base)
    stores = stores or memory_stores(token_ttl_s=tw.stream_token_ttl_s)
    return PhoneServices(
        settings=settings,
        backend_factory=backend_factory,
        tokens=stores.tokens,
        intents=stores.intents,
        registry=registry,
        records=CallRecords(bus, store=stores.calls),
        bus=bus,
        rest=rest,
        tools=tools,
        catalog=catalog,
        clock=clock or SystemClock(),
    )


def lead_ms(configured_ms: int, capabilities: Capabilities) -> int:
    """How far outbound audio may run ahead at Twilio for a call on this backend."""
    if capabilities.server_barge_in:
        return min(configured_ms, SERVER_BARGE_IN_MAX_LEAD_MS)
    return configured_ms


def call_backend_options(
    settings: Settings, ctx: CallContext, call: Admitted, tools: list[dict[str, Any]]
) -> BackendOptions:
    """Per-call backend settings: phone formats, who is calling, the purpose, the tools."""
    rt = settings.realtime
    target = voice_target(settings)
    fmt = AudioFormat.from_name(settings.twilio.model_audio)
    who = {
        Role.OWNER: f"the owner, {ctx.caller_name}",
        Role.CONTACT: f"a known contact, {ctx.caller_name}",
        Role.UNKNOWN: "an unknown caller",
    }[ctx.role]
    if not ctx.verified:
        who += " (identity not verified)"
    parts = [rt.instructions, f"You are on a phone call with {who}, number {ctx.caller_id}."]
    if call.direction == "outbound":
        parts.append(f"You placed this call. Its purpose: {call.purpose or 'not given'}.")
        greeting = "Introduce yourself briefly and say why you are calling."
        greeting_text = "Hello, this is an assistant calling."
    elif ctx.role is Role.UNKNOWN:
        greeting = "Greet the caller briefly and ask how you can help."
        greeting_text = "Hello, how can I help?"
    else:
        greeting = f"Greet {ctx.caller_name} by name, briefly, and ask how you can help."
        greeting_text = f"Hello {ctx.caller_name}, how can I help?"
    parts.append("When the conversation is over, say goodbye and call end_call.")
    return BackendOptions(
        model=target.model,
        endpoint=target.endpoint,
        voice=target.voice,
        instructions=" ".join(parts),
        input_format=fmt,
        output_format=fmt,
        tools=tuple(tools),
        greeting=greeting,
        greeting_text=greeting_text,
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
    services: PhoneServices, transport: TwilioTransport, *, signed: bool
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
        log.warning("media stream refused: %s", got)
        await transport.close(POLICY_VIOLATION, got)
        return got
    admission = StreamAdmission(got)
    token_valid = await services.tokens.redeem(
        admission.token, admission.ref, services.clock.monotonic()
    )
    # Only a valid token may use up the outbound intent: a forged socket for a known
    # reference must not take it from the real stream.
    intent = None
    if token_valid and admission.direction == "outbound":
        intent = await services.intents.take(admission.ref)
    verdict = admission.decide(
        token_valid=token_valid,
        intent=intent,
        call_live=call_session_id(got.call_sid) in services.registry,
    )
    if isinstance(verdict, Refused):
        log.warning("%s refused: %s", got.call_sid, verdict.reason)
        services.bus.publish(CallRefused(got.call_sid, verdict.reason))
        await transport.close(POLICY_VIOLATION, verdict.reason)
        return verdict.reason
    try:
        return await _run_call(services, stream, transport, verdict, signed=signed)
    finally:
        # The call is over: its CallSid may be issued a token again (a new call leg).
        await services.tokens.release(verdict.call_sid)


async def _run_call(
    services: PhoneServices,
    stream: TwilioStream,
    transport: TwilioTransport,
    call: Admitted,
    *,
    signed: bool,
) -> str:
    settings = services.settings
    ctx = identify(
        call.number, settings.identity, session_id=call_session_id(call.call_sid), verified=signed
    )
    from_ = settings.twilio.from_number if call.direction == "outbound" else call.number
    begun = CallRecord(
        call.call_sid,
        call.direction,
        from_,
        call.to,
        str(ctx.role),
        ctx.verified,
        services.clock.wall(),
        purpose=call.purpose,
    )
    services.records.begin(begun)  # written now: a crash leaves it marked live

    def record(reason: str, ended: float) -> None:
        services.records.finish(replace(begun, ended_at=ended, reason=reason))

    def endpoint_with(max_lead_ms: int) -> TwilioEndpoint:
        return TwilioEndpoint(
            stream,
            transport,
            call_sid=call.call_sid,
            rest=services.rest,
            max_lead_ms=max_lead_ms,
            max_queued_ms=int(settings.limits.call_max_queued_audio_s * 1000),
            clock=services.clock,
            farewell=services.goodbye,
        )

    target = voice_target(settings)
    # Checked before a backend exists: a call that cannot reach a model costs nothing, and
    # the caller hears why at once instead of silence.
    refusal = realtime_refusal(settings)
    if refusal is None and not local_engine_selected(settings):  # the engine needs no key
        refusal = model_key_problem(settings.realtime, target.endpoint, mock_path=target.mock_path)
    if services.registry.closing:  # its webhook was answered just before the shutdown
        refusal = SHUTDOWN_REASON
    if refusal is not None:
        log.warning("%s refused: %s", call.call_sid, refusal)
        apology = endpoint_with(settings.twilio.max_lead_ms)
        return await _apologize(services, apology, refusal, record)
    catalog = services.catalog
    tools = catalog.tool_definitions(ctx) if catalog is not None else [END_CALL_TOOL]
    options = call_backend_options(settings, ctx, call, tools)
    # The owner's conversation so far; anyone else starts afresh.
    history = services.registry.history
    start = await history.voice_start(ctx) if history is not None else None
    if start is not None:
        options = replace(options, history=start.seed)
    backend = services.backend_factory(options)
    limit_s = start_limit_s(settings)
    try:
        async with asyncio.timeout(limit_s):  # the backend's own limits, and a last one
            await backend.start()
    except (BackendError, OSError, TimeoutError) as exc:
        failure = str(exc) if str(exc) else f"no answer within {limit_s:g} s"
        reason = f"backend failed to start: {failure}"
        session_log.error("%s failed to start: %s", ctx.session_id, reason)
        services.bus.publish(SessionFailed(ctx.session_id, reason))
        await backend.close()
        apology = endpoint_with(settings.twilio.max_lead_ms)
        return await _apologize(services, apology, reason, record)
    endpoint = endpoint_with(lead_ms(settings.twilio.max_lead_ms, backend.capabilities))

    if services.registry.closing:  # shutdown began while the backend connected (rare)
        log.warning("%s refused: %s", call.call_sid, SHUTDOWN_REASON)
        await backend.close()
        await transport.close(SERVICE_RESTART, SHUTDOWN_REASON)
        record(SHUTDOWN_REASON, services.clock.wall())
        return SHUTDOWN_REASON

    def ended(session: ConversationSession) -> None:
        services.registry.remove(session)
        reason, at = session.reason or "ended", session.ended_at or services.clock.wall()
        log.info("%s ended: %s after %.1f s", call.call_sid, reason, at - begun.started_at)
        record(reason, at)

    session = ConversationSession(
        ctx,
        backend,
        endpoint,
        bus=services.bus,
        tools=services.tools,
        clock=services.clock,
        on_end=ended,
        max_tool_calls=settings.limits.call_max_tool_calls,
        max_turn_backlog=settings.limits.turn_max_pending_events,
        history=None if history is None or start is None else history.writer(ctx, start),
        labels={
            "call_sid": call.call_sid,
            "stream_sid": call.stream_sid,
            "direction": call.direction,
            "from": from_,
            "to": call.to,
            "purpose": call.purpose,
        },
    )
    services.registry.add(session)
    return await session.run()


def start_limit_s(settings: Settings) -> float:
    """How long a call waits for its model before the caller hears the apology: the
    backend's connect limit twice (the socket, then the session's configuration), and a
    margin, as a last bound over whatever the backend does itself."""
    return 2 * settings.realtime.connect_timeout_s + 1.0


async def _apologize(
    services: PhoneServices,
    endpoint: TwilioEndpoint,
    reason: str,
    record: Callable[[str, float], None],
) -> str:
    """No model for this call: the caller hears the apology, the call is hung up through
    Twilio REST, and its record says why."""
    await apologize_and_hang_up(endpoint, services.apology, reason)
    record(reason, services.clock.wall())
    return reason
