"""TwiML documents the voice webhook answers with
(https://www.twilio.com/docs/voice/twiml/stream), built with twilio-python's `VoiceResponse`
so escaping is the library's. Serve them as `text/xml`: a text/plain body is read aloud to the
caller (https://www.twilio.com/docs/usage/webhooks/voice-webhooks).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from twilio.twiml.voice_response import Connect, VoiceResponse

# Each <Parameter>'s name plus value must stay under 500 characters (TwiML <Stream> docs).
MAX_PARAMETER_CHARS = 500
# Inline TwiML in a REST call request is limited to 4000 characters
# (https://www.twilio.com/docs/voice/api/call-resource).
MAX_INLINE_TWIML_CHARS = 4000


def connect_stream_twiml(
    ws_url: str, parameters: Mapping[str, str], status_callback: str | None = None
) -> str:
    """`<Response><Connect><Stream url=ws_url><Parameter …/>…</Stream></Connect></Response>`.

    Only `<Connect><Stream>` gives two-way audio (`<Start><Stream>` is listen-only).
    `ws_url` must be a `wss://` (or, for local tools, `ws://`) URL without a query string:
    per-call data goes into `parameters`, which arrive as `start.customParameters`.
    Raises ValueError on a URL or parameter Twilio would reject.
    """
    parts = urlsplit(ws_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream URL must be wss://host/path, got {ws_url!r}")
    if parts.query or parts.fragment:
        raise ValueError("stream URL must not carry a query string; use parameters")
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=ws_url, status_callback=status_callback)
    for name, value in parameters.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise ValueError(f"stream parameter {name!r} must map a name to a string")
        if len(name) + len(value) >= MAX_PARAMETER_CHARS:
            raise ValueError(f"stream parameter {name!r} is too long (name + value < 500)")
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response.to_xml())


def say_hangup_twiml(text: str) -> str:
    """`<Response><Say>text</Say><Hangup/></Response>`: refuse a call politely, or redirect a
    live call to a server-side goodbye."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response.to_xml())
