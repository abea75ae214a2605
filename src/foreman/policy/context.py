"""Who is asking and through which channel: the input to every policy decision."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    OWNER = "owner"  # the one person Foreman works for (`identity.owner_name`)
    CONTACT = "contact"
    UNKNOWN = "unknown"


class Channel(enum.StrEnum):
    PHONE = "phone"
    LOCAL_VOICE = "local_voice"
    CHAT = "chat"


@dataclass(frozen=True, slots=True)
class CallContext:
    session_id: str
    channel: Channel
    role: Role
    caller_id: str = ""  # E.164 number, or "" for local/chat
    caller_name: str = ""
    verified: bool = False  # the caller's identity was checked (signed Twilio webhook)
