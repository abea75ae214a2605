"""Sans-I/O OpenAI Realtime GA protocol: typed events, parser, `session.update` builder and
the `RealtimeSession` state machine. Never imports asyncio. Protocol:
https://platform.openai.com/docs/guides/realtime-conversations.

Typical use by the I/O layer::

    rt = RealtimeSession()
    rt.receive(await ws.recv())                       # [SessionCreated]; phase CREATED
    await ws.send(rt.send(build_session_update(session_options_from_config(cfg.realtime))))
    await ws.send(rt.send_audio(b64_chunk))           # every 20 ms (pipelined behind the update)
    for x in rt.receive(frame):                       # [ServerEvent, *notices]
        match x:
            case FunctionCallReady(): ...             # run the tool, send its output
            case ErrorNotice(severity="fatal"): ...   # close; rt.last_error says why
    retry = rt.connection_lost(ws.close_code, ws.close_reason)

`parse_server_event` / `RealtimeSession.receive` raise `RemoteProtocolError` for a frame that
is not a JSON object with a string `type` (log it and keep reading); unknown types become
`UnknownEvent`. Illegal sends raise `InvalidState`.
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
from foreman.protocols.realtime.errors import (
    BETA_REFUSED_CLOSE_CODE,
    RECOVERABLE_CLOSE_CODES,
    ErrorNotice,
    classify_error,
)
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
    parse_client_event,
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
    check_ga_response,
    check_ga_session,
    session_options_from_config,
)
from foreman.protocols.realtime.state import Phase, RealtimeSession

__all__ = [
    "BETA_REFUSED_CLOSE_CODE",
    "CLIENT_EVENT_TYPES",
    "RECOVERABLE_CLOSE_CODES",
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
    "check_ga_response",
    "check_ga_session",
    "classify_error",
    "encode_audio_append",
    "encode_client_event",
    "function_call_output_item",
    "parse_client_event",
    "parse_server_event",
    "session_options_from_config",
    "system_text_item",
    "user_audio_item",
    "user_text_item",
]
