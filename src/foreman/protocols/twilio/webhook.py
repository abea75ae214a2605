"""The voice webhook's form, read without I/O: its size bounded before it is parsed, the
call's fields checked, and the caller carried to the media stream in TwiML parameters.

https://www.twilio.com/docs/usage/webhooks/voice-webhooks

* `parse_form(body, max_fields)` counts the fields before parsing anything (a body of
  150,000 repeated fields is refused at the cost of one byte count) and keeps every value of
  a repeated field, in order, as the signature needs.
* `inbound_call(fields)` returns the call's `CallSid`, `From` and `To`, or raises
  `InvalidWebhook` with a one-line reason when a field is not something Twilio sends: a
  CallSid is `CA` and 32 hex digits; `From` and `To` are phone numbers, SIP URIs
  (`sip:alice@example.com`, which can be long) or client identities, without control
  characters (XML cannot carry them to the stream parameters).
* A value longer than one TwiML `<Parameter>` can hold (name plus value under 500
  characters, https://www.twilio.com/docs/voice/twiml/stream#parameter) is split over
  numbered parameters (`caller`, `caller.2`, ...) by `split_parameter` and put back together
  on the media socket by `join_parameter`. `start.customParameters` carries them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

__all__ = [
    "MAX_PARTY_CHARS",
    "FormTooLarge",
    "InboundCall",
    "InvalidWebhook",
    "Params",
    "inbound_call",
    "join_parameter",
    "parse_form",
    "split_parameter",
]

Params = dict[str, str | list[str]]

# Each <Parameter>'s name plus value must stay under this many characters.
PARAMETER_CHARS: Final = 500
# The longest From or To accepted. A SIP URI has no length limit of its own, but Twilio
# refuses SIP headers of 1024 characters or more (https://www.twilio.com/docs/api/errors/21227);
# twice that leaves room for the user and host parts.
MAX_PARTY_CHARS: Final = 2048
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
# Characters XML 1.0 cannot carry (https://www.w3.org/TR/xml/#charsets), and DEL.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


class InvalidWebhook(ValueError):
    """A field is not what Twilio sends. Answer 400 with the message (one line)."""


class FormTooLarge(ValueError):
    """More fields than allowed. Answer 413 with the message (one line)."""


@dataclass(frozen=True, slots=True)
class InboundCall:
    call_sid: str
    caller: str  # `From`: a phone number, a SIP URI or a client identity
    to: str


def parse_form(body: bytes, max_fields: int) -> Params:
    """The fields of an `application/x-www-form-urlencoded` body, repeated ones as lists.
    Raises FormTooLarge when it has more than `max_fields` fields (checked before parsing)."""
    if body.count(b"&") + 1 > max_fields:
        raise FormTooLarge(f"the form has more than {max_fields} fields")
    text = body.decode("utf-8", "replace")
    params: Params = {}
    for name, value in parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields):
        prev = params.get(name)
        if prev is None:
            params[name] = value
        elif isinstance(prev, str):  # a repeated field: every value is signed, in order
            params[name] = [prev, value]
        else:
            prev.append(value)
    return params


def first(params: Mapping[str, str | list[str]], name: str) -> str:
    """The field's value; the first one of a repeated field; "" when absent."""
    value = params.get(name, "")
    return value if isinstance(value, str) else value[0]


def inbound_call(params: Mapping[str, str | list[str]]) -> InboundCall:
    """The call a voice webhook announces. Raises InvalidWebhook (one line) on a field Twilio
    never sends; check the signature first, so the reason goes only to a genuine sender."""
    call_sid = first(params, "CallSid")
    if not CALL_SID.fullmatch(call_sid):
        shown = f"{len(call_sid)} characters" if call_sid else "missing"
        raise InvalidWebhook(f"CallSid must be CA followed by 32 hex digits ({shown})")
    caller, to = first(params, "From"), first(params, "To")
    for name, value in (("From", caller), ("To", to)):
        if len(value) > MAX_PARTY_CHARS:
            raise InvalidWebhook(
                f"{name} is {len(value)} characters long; at most {MAX_PARTY_CHARS} are accepted"
            )
        if _NOT_XML.search(value):
            raise InvalidWebhook(f"{name} contains control characters")
    return InboundCall(call_sid, caller, to)


def split_parameter(name: str, value: str) -> dict[str, str]:
    """`{name: value}`, or, when that does not fit one `<Parameter>`, the value in pieces
    under `name`, `name.2`, `name.3`, ... (each name plus piece under 500 characters)."""
    if len(name) + len(value) < PARAMETER_CHARS:
        return {name: value}
    digits = 1
    while True:  # room for the piece beside its name and its number (".2" … ".10" …)
        room = PARAMETER_CHARS - 1 - len(name) - 1 - digits
        if room < 1:
            raise ValueError(f"parameter name {name[:40]!r} is too long")
        count = -(-len(value) // room)
        if len(str(count)) <= digits:
            break
        digits += 1
    pieces = [value[i : i + room] for i in range(0, len(value), room)]
    return {(name if n == 1 else f"{name}.{n}"): piece for n, piece in enumerate(pieces, 1)}


def join_parameter(params: Mapping[str, str], name: str) -> str:
    """The value `split_parameter` split (a value that was not split comes back as is);
    "" when absent."""
    value = params.get(name, "")
    n = 2
    while (piece := params.get(f"{name}.{n}")) is not None:
        value += piece
        n += 1
    return value
