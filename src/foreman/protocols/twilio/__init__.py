"""Twilio Media Streams, sans-I/O: messages, the stream state machine for both ends
(`TwilioStream`, the server; `TwilioCallerStream`, Twilio's side), signatures, TwiML and
single-use stream tokens.

https://www.twilio.com/docs/voice/media-streams/websocket-messages
"""

from foreman.protocols.twilio.caller import TwilioCallerStream
from foreman.protocols.twilio.messages import (
    FRAME_BYTES,
    BadMessage,
    CallerEvent,
    Connected,
    Dtmf,
    MarkEcho,
    Media,
    Rejected,
    ServerClear,
    ServerMark,
    ServerMedia,
    Start,
    Stop,
    Tolerated,
    TwilioEvent,
    Unknown,
)
from foreman.protocols.twilio.signature import (
    SIGNATURE_HEADER,
    compute_signature,
    public_http_url,
    public_ws_url,
    validate_json_request,
    validate_request,
    validate_ws_upgrade,
)
from foreman.protocols.twilio.states import TRANSITIONS
from foreman.protocols.twilio.stream import TwilioStream
from foreman.protocols.twilio.tokens import StreamTokens
from foreman.protocols.twilio.twiml import connect_stream_twiml, say_hangup_twiml

__all__ = [
    "FRAME_BYTES",
    "SIGNATURE_HEADER",
    "TRANSITIONS",
    "BadMessage",
    "CallerEvent",
    "Connected",
    "Dtmf",
    "MarkEcho",
    "Media",
    "Rejected",
    "ServerClear",
    "ServerMark",
    "ServerMedia",
    "Start",
    "Stop",
    "StreamTokens",
    "Tolerated",
    "TwilioCallerStream",
    "TwilioEvent",
    "TwilioStream",
    "Unknown",
    "compute_signature",
    "connect_stream_twiml",
    "public_http_url",
    "public_ws_url",
    "say_hangup_twiml",
    "validate_json_request",
    "validate_request",
    "validate_ws_upgrade",
]
