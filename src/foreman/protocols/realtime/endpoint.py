"""Is a Realtime endpoint URL usable? Decided before anything is dialled, without I/O.

`endpoint_problem(url)` is None for a `ws://` or `wss://` URL with a host that can be
looked up and a port from 1 to 65535, and otherwise one line saying what is wrong, worded
to follow the word "endpoint" (the config names the key, the API the field). The URL
itself is never repeated: it may carry what should not be echoed. Checked where a URL
enters (the config file, a start request) and again just before connecting.
Connection rules: https://platform.openai.com/docs/guides/realtime-websocket
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

__all__ = ["endpoint_problem"]

MAX_HOST_CHARS: Final = 253  # a DNS name (RFC 1035 2.3.4)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")
_BAD_PORT: Final = "port must be a number from 1 to 65535"


def endpoint_problem(url: str) -> str | None:
    """None when `url` can be dialled as a Realtime endpoint, else why not (one line)."""
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        return "must be a ws:// or wss:// URL"
    if _SPACE_OR_CONTROL.search(url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:  # unbalanced brackets, or what they hold is not an IPv6 address
        return "is not a valid URL (a malformed [IPv6 address])"
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        return _BAD_PORT
    if "@" in parts.netloc:
        return "must not carry user:password@ (the key goes in a header)"
    if parts.fragment:
        return "must not have a #fragment"
    if port == 0:
        return _BAD_PORT
    host = parts.hostname
    if not host:
        return "has no host"
    if not _host_ok(host):
        return "host is not a valid host name or IP address"
    return None


def _host_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:  # an empty or over-long label, a character IDNA refuses
        return False
    name = ascii_host.removesuffix(".")
    return len(name) <= MAX_HOST_CHARS and all(_LABEL.fullmatch(x) for x in name.split("."))
