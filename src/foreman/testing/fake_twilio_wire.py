"""What Twilio would say about a message a server sends on a Media Stream (reference §1.8, §2.3).

Server -> Twilio messages are exactly `media` `{event, streamSid, media: {payload}}`, `mark`
`{event, streamSid, mark: {name}}` and `clear` `{event, streamSid}`, JSON text frames only,
with the start's `streamSid`, nothing before `start` or after `stop`. Anything else is error
31951 (31950 for binary frames). Payloads that are not whole 160-byte frames are accepted by
Twilio but make playback jitter (§2.5), so they are reported without being rejected.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any

FRAME = 160

_SHAPES: dict[str, tuple[frozenset[str], str | None, frozenset[str]]] = {
    # event: (top-level keys, nested object key, nested keys)
    "media": (frozenset({"event", "streamSid", "media"}), "media", frozenset({"payload"})),
    "mark": (frozenset({"event", "streamSid", "mark"}), "mark", frozenset({"name"})),
    "clear": (frozenset({"event", "streamSid"}), None, frozenset()),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """`problems` to record; `rejected` when Twilio would not act on the message at all."""

    problems: list[str] = field(default_factory=list)
    rejected: bool = False


def check_server_message(
    msg: dict[str, Any], *, stream_sid: str, started: bool, stopped: bool
) -> Verdict:
    """Judge one parsed server -> Twilio message."""
    event = msg.get("event")
    shape = _SHAPES.get(event) if isinstance(event, str) else None
    if shape is None:
        return Verdict([f"unknown event {event!r} (31951)"], rejected=True)
    problems: list[str] = []
    if not started:
        problems.append(f"{event} sent before start")
    if stopped:
        problems.append(f"{event} sent after stop")
    keys, nested, nested_keys = shape
    if set(msg) != keys:
        problems.append(f"{event}: fields {sorted(msg)} != {sorted(keys)} (31951)")
    if msg.get("streamSid") != stream_sid:
        problems.append(f"{event}: wrong streamSid {msg.get('streamSid')!r} (31951)")
    soft: list[str] = []
    if nested is not None:
        body = msg.get(nested)
        if not isinstance(body, dict) or set(body) != nested_keys:
            problems.append(f"{event}.{nested} must be exactly {sorted(nested_keys)} (31951)")
        elif event == "mark" and (not isinstance(body["name"], str) or not body["name"]):
            problems.append("mark.name must be a non-empty string (31951)")
        elif event == "media":
            hard, soft = _check_payload(body["payload"])
            problems += hard
    return Verdict(problems + soft, rejected=bool(problems))


def _check_payload(payload: object) -> tuple[list[str], list[str]]:
    """(problems Twilio rejects, problems it tolerates)."""
    if not isinstance(payload, str):
        return ["media.payload is not a string (31951)"], []
    try:
        size = len(binascii.a2b_base64(payload, strict_mode=True))
    except binascii.Error:
        return ["media.payload is not valid base64 (31951)"], []
    if size == 0 or size % FRAME:
        return [], [f"media payload of {size} bytes is not whole 160-byte frames"]
    return [], []
