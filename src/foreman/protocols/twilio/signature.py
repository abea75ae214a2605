"""`X-Twilio-Signature` checks for webhooks and the Media Streams upgrade
(https://www.twilio.com/docs/usage/security, https://www.twilio.com/docs/voice/media-streams).

The algorithm is twilio-python's `RequestValidator` (HMAC-SHA1 over the URL plus the sorted
POST name/value pairs, base64); this module wraps it so that

* a missing or empty header is a plain `False`,
* the comparison is constant-time (`hmac.compare_digest`, the library's own `compare` is a
  Python loop),
* multi-valued form fields can be passed as lists,
* the WebSocket upgrade is checked over the `wss://` URL from the TwiML, never the
  `https://` URL a TLS-terminating proxy reports.

Always sign against the configured public URL, never the URL the app sees (a proxy in front
changes the scheme, host or port).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator, add_port, remove_port

SIGNATURE_HEADER = "X-Twilio-Signature"

_WS_SCHEME = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}
_HTTP_SCHEME = {"wss": "https", "ws": "http", "https": "https", "http": "http"}


class _MultiParams:
    """Gives `RequestValidator.get_values` the `getlist` it looks for (Django-style)."""

    def __init__(self, params: Mapping[str, str | list[str]]) -> None:
        self._params = params

    def __iter__(self) -> Any:
        return iter(self._params)

    def __bool__(self) -> bool:
        return bool(self._params)

    def getlist(self, name: str) -> list[str]:
        value = self._params[name]
        return [value] if isinstance(value, str) else list(value)


def compute_signature(auth_token: str, url: str, params: Mapping[str, str | list[str]]) -> str:
    """The signature Twilio would send for a request to `url` with form fields `params`
    (an empty mapping for GET requests and WebSocket upgrades)."""
    validator = RequestValidator(auth_token)
    return str(validator.compute_signature(url, _MultiParams(params)))


def validate_request(
    auth_token: str,
    url: str,
    params: Mapping[str, str | list[str]],
    signature: str | None,
) -> bool:
    """True if `signature` is what Twilio sends for `url` + `params`.

    `url` is the public URL Twilio requested (scheme, host, path and query exactly as Twilio
    sent them). Like twilio-python, the URL is tried with the default port added and with any
    port removed (Twilio strips or keeps ports depending on the product). Answer 403
    when this is False.
    """
    if not signature or not auth_token:
        return False
    parsed = urlsplit(url)
    candidates = {remove_port(parsed), add_port(parsed)}
    validator = RequestValidator(auth_token)
    wrapped = _MultiParams(params)
    given = signature.encode()
    ok = False
    for candidate in sorted(candidates):
        expected = str(validator.compute_signature(candidate, wrapped)).encode()
        # No early exit: both candidates are always computed and compared.
        ok |= hmac.compare_digest(expected, given)
    return ok


def validate_json_request(auth_token: str, url: str, body: bytes, signature: str | None) -> bool:
    """The JSON-body variant: the signature covers the URL alone, and the URL's
    `bodySHA256` query parameter must equal the SHA-256 of the raw body."""
    query = parse_qs(urlsplit(url).query)
    claimed = query.get("bodySHA256", [""])[0]
    digest = hashlib.sha256(body).hexdigest()
    body_ok = hmac.compare_digest(digest.encode(), claimed.encode())
    return validate_request(auth_token, url, {}, signature) and body_ok


def validate_ws_upgrade(auth_token: str, ws_url: str, signature: str | None) -> bool:
    """Check the signature on the Media Streams upgrade.

    `ws_url` is the `<Stream url>` we put in the TwiML (scheme `wss`, no parameters). Twilio's
    documentation suggests also accepting the URL with a trailing `/`, which this does. Reject
    the upgrade (403, or close 1008) when False, before opening any model session.
    """
    ws_url = _with_scheme(ws_url, _WS_SCHEME)
    variants = [ws_url, ws_url[:-1] if ws_url.endswith("/") else ws_url + "/"]
    ok = False
    for candidate in variants:
        ok |= validate_request(auth_token, candidate, {}, signature)
    return ok


def _with_scheme(url: str, mapping: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    scheme = mapping.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url!r}")
    return urlunsplit(parts._replace(scheme=scheme))


def _join(public_url: str, path: str, mapping: Mapping[str, str]) -> str:
    parts = urlsplit(public_url.strip())
    if not parts.netloc:
        raise ValueError(f"public URL {public_url!r} has no host")
    if parts.query or parts.fragment:
        # A stream URL must not carry a query string (https://www.twilio.com/docs/api/errors/31920).
        raise ValueError(f"public URL {public_url!r} must not have a query or fragment")
    if not path.startswith("/"):
        path = "/" + path
    base = urlunsplit(parts._replace(path=parts.path.rstrip("/")))
    return _with_scheme(base + path, mapping)


def public_ws_url(public_url: str, path: str) -> str:
    """The `wss://` URL Twilio should open for `path`:
    `public_ws_url("https://h", "/twilio/media") == "wss://h/twilio/media"` (`http` -> `ws`).

    A path prefix in `public_url` (a reverse proxy mounting Foreman under `/x`) is kept:
    `"https://h/x"` gives `"wss://h/x/twilio/media"`, consistent with `public_http_url`.
    """
    return _join(public_url, path, _WS_SCHEME)


def public_http_url(public_url: str, path: str) -> str:
    """The public `https://` URL of a webhook `path` (what Twilio signs for that webhook)."""
    return _join(public_url, path, _HTTP_SCHEME)
