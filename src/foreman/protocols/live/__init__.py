"""The GPT-Live WebSocket protocol, sans I/O (`wss://api.openai.com/v1/live/sessions`).

GPT-Live is not a dialect of Realtime: one continuous, full-duplex timeline with no turns,
responses, VAD events or truncation; the voice model has no tools and delegates work to a
hosted Responses model, whose streaming events come back wrapped in `response.event`
envelopes. `LiveClient` parses server frames, keeps the session's phase in one transition
table and the delegation bookkeeping, and queues client frames in an outbox
(`data_to_send()`); it never awaits or touches a socket.
Reference: https://developers.openai.com/api/docs/guides/live and the `openai.types.live`
unions of the official Python SDK.
"""

from foreman.protocols.live.client import LiveClient, LivePhase
from foreman.protocols.live.delegations import (
    DelegationDone,
    Delegations,
    FunctionCallRequested,
)
from foreman.protocols.live.events import ServerEvent, UnknownEvent, parse_server_event
from foreman.protocols.live.session_config import LiveSessionOptions, build_session_config

__all__ = [
    "DelegationDone",
    "Delegations",
    "FunctionCallRequested",
    "LiveClient",
    "LivePhase",
    "LiveSessionOptions",
    "ServerEvent",
    "UnknownEvent",
    "build_session_config",
    "parse_server_event",
]
