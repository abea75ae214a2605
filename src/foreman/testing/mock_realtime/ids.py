"""Identifiers shaped like the service's (`event_…`, `item_…`, `resp_…`, `call_…`)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, n: int = 21) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


def event_id() -> str:
    return new_id("event_")


def item_id() -> str:
    return new_id("item_")


def response_id() -> str:
    return new_id("resp_")


def call_id() -> str:
    return new_id("call_", 16)


def conversation_id() -> str:
    return new_id("conv_")
