"""Twilio Media Streams, sans-I/O: messages, the `TwilioStream` state machine, signatures,
TwiML and single-use stream tokens (reference twilio-media-streams.md)."""

from foreman.protocols.twilio.messages import (
    FRAME_BYTES,
    BadMessage,
    Connected,
    Dtmf,
    MarkEcho,
    Media,
    Start,
    Stop,
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
from foreman.protocols.twilio.stream import TwilioStream
from foreman.protocols.twilio.tokens import StreamTokens
from foreman.protocols.twilio.twiml import connect_stream_twiml, say_hangup_twiml

__all__ = [
    "FRAME_BYTES",
    "SIGNATURE_HEADER",
    "BadMessage",
    "Connected",
    "Dtmf",
    "MarkEcho",
    "Media",
    "Start",
    "Stop",
    "StreamTokens",
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
