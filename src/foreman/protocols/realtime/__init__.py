"""Sans-I/O OpenAI Realtime GA protocol (reference openai-realtime.md): typed events, parser,
`session.update` builder and the `RealtimeSession` state machine. Never imports asyncio.

Typical use by the I/O layer::

    rt = RealtimeSession()
    for ev in rt.receive(frame):          # session.created
        ...
    ws.send(rt.send(build_session_update(session_options_from_config(cfg.realtime))))
    ws.send(rt.send_audio(b64_chunk))     # every 20 ms
"""

from foreman.protocols.realtime.calls import FunctionCallReady
from foreman.protocols.realtime.client_events import (
    CLIENT_EVENT_TYPES,
    ClientEvent,
    ConversationItemCreate,
    ConversationItemDelete,
    ConversationItemRetrieve,
    ConversationItemTruncate,
    InputAudioBufferAppend,
    InputAudioBufferClear,
    InputAudioBufferCommit,
    OutputAudioBufferClear,
    ResponseCancel,
    ResponseCreate,
    SessionUpdate,
)
from foreman.protocols.realtime.errors import ErrorNotice, classify_error
from foreman.protocols.realtime.items import (
    assistant_text_item,
    function_call_output_item,
    system_text_item,
    user_audio_item,
    user_text_item,
)
from foreman.protocols.realtime.parser import (
    encode_audio_append,
    encode_client_event,
    parse_server_event,
)
from foreman.protocols.realtime.server_events import (
    SERVER_EVENT_TYPES,
    KnownServerEvent,
    ServerEvent,
    UnknownEvent,
)
from foreman.protocols.realtime.session_config import (
    SessionOptions,
    TurnDetection,
    build_session_update,
    session_options_from_config,
)
from foreman.protocols.realtime.state import Phase, RealtimeSession

__all__ = [
    "CLIENT_EVENT_TYPES",
    "SERVER_EVENT_TYPES",
    "ClientEvent",
    "ConversationItemCreate",
    "ConversationItemDelete",
    "ConversationItemRetrieve",
    "ConversationItemTruncate",
    "ErrorNotice",
    "FunctionCallReady",
    "InputAudioBufferAppend",
    "InputAudioBufferClear",
    "InputAudioBufferCommit",
    "KnownServerEvent",
    "OutputAudioBufferClear",
    "Phase",
    "RealtimeSession",
    "ResponseCancel",
    "ResponseCreate",
    "ServerEvent",
    "SessionOptions",
    "SessionUpdate",
    "TurnDetection",
    "UnknownEvent",
    "assistant_text_item",
    "build_session_update",
    "classify_error",
    "encode_audio_append",
    "encode_client_event",
    "function_call_output_item",
    "parse_server_event",
    "session_options_from_config",
    "system_text_item",
    "user_audio_item",
    "user_text_item",
]
