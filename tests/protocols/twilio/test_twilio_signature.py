"""Signature vectors: twilio-python's own test vectors
(https://github.com/twilio/twilio-python/blob/main/tests/unit/test_request_validator.py),
Twilio's documentation example (https://www.twilio.com/docs/usage/security), and vectors of our
own for Foreman's URLs, each also accepted by twilio-python's `RequestValidator`."""

from __future__ import annotations

import pytest

from foreman.protocols.twilio.signature import (
    compute_signature,
    public_http_url,
    public_ws_url,
    validate_json_request,
    validate_request,
    validate_ws_upgrade,
)

PY_TOKEN = "12345"
PY_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PY_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mycompany.com/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("https://mycompany.com:443/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com:80/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ],
)
def test_twilio_python_vectors(url: str, expected: str) -> None:
    assert compute_signature(PY_TOKEN, url, PY_PARAMS) == expected
    assert validate_request(PY_TOKEN, url, PY_PARAMS, expected)
    assert not validate_request("54321", url, PY_PARAMS, expected)


def test_port_tolerance_matches_the_library() -> None:
    # Signed without the port, checked against the URL with :443 (and the reverse).
    assert validate_request(
        PY_TOKEN,
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        PY_PARAMS,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    )
    assert validate_request(PY_TOKEN, PY_URL, PY_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")


def test_multi_valued_params_sort_and_drop_duplicates() -> None:
    params = {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234", "1234"]}
    assert compute_signature(PY_TOKEN, PY_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert validate_request(PY_TOKEN, PY_URL, params, "IK+Dwps556ElfBT0I3Rgjkr1wJU=")


def test_json_body_variant() -> None:
    body = b'{"property": "value", "boolean": true}'
    digest = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    url = f"{PY_URL}&bodySHA256={digest}"
    assert compute_signature(PY_TOKEN, url, {}) == "a9nBmqA0ju/hNViExpshrM61xv4="
    assert validate_json_request(PY_TOKEN, url, body, "a9nBmqA0ju/hNViExpshrM61xv4=")
    assert not validate_json_request(PY_TOKEN, url, body + b" ", "a9nBmqA0ju/hNViExpshrM61xv4=")


def test_twilio_documentation_example() -> None:
    # This vector was signed over example.com, not mycompany.com (checked with an independent
    # HMAC): over mycompany.com it is GvWf1cFY/Q7PnoempGyD5oXAezc=.
    url = "https://example.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    assert validate_request(PY_TOKEN, url, params, "L/OH5YylLD5NRKLltdqwSvS0BnU=")
    assert not validate_request(PY_TOKEN, PY_URL, params, "L/OH5YylLD5NRKLltdqwSvS0BnU=")
    assert validate_request(PY_TOKEN, PY_URL, params, "GvWf1cFY/Q7PnoempGyD5oXAezc=")


TOKEN = "0123456789abcdef0123456789abcdef"
VOICE = {
    "AccountSid": "AC00000000000000000000000000000001",
    "ApiVersion": "2010-04-01",
    "CallSid": "CA00000000000000000000000000000002",
    "CallStatus": "ringing",
    "Direction": "inbound",
    "From": "+15005550006",
    "To": "+15005550001",
}


def test_voice_webhook_vectors() -> None:
    url = "https://voice.example.com/twilio/voice"
    sig = "PXE0r6MVEjJXUJENLnLXlFP5SnA="
    assert compute_signature(TOKEN, url, VOICE) == sig
    assert validate_request(TOKEN, url, VOICE, sig)
    assert validate_request(TOKEN, "https://voice.example.com:443/twilio/voice", VOICE, sig)
    assert not validate_request(TOKEN, url, {**VOICE, "From": "+15005550009"}, sig)


def test_missing_or_empty_signature_is_false() -> None:
    url = "https://voice.example.com/twilio/voice"
    assert not validate_request(TOKEN, url, VOICE, None)
    assert not validate_request(TOKEN, url, VOICE, "")
    assert not validate_request("", url, VOICE, "PXE0r6MVEjJXUJENLnLXlFP5SnA=")
    assert not validate_request(TOKEN, url, VOICE, "PXE0r6MVEjJXUJENLnLXlFP5SnA")


def test_get_webhook_vector() -> None:
    url = (
        "https://voice.example.com/twilio/voice?AccountSid=AC00000000000000000000000000000001"
        "&CallSid=CA00000000000000000000000000000002&From=%2B15005550006&To=%2B15005550001"
    )
    assert compute_signature(TOKEN, url, {}) == "xaIY5itC1z8pkXEvaT5iPwOrgGM="
    assert validate_request(TOKEN, url, {}, "xaIY5itC1z8pkXEvaT5iPwOrgGM=")


def test_stream_status_callback_vector() -> None:
    params = {
        "AccountSid": "AC00000000000000000000000000000001",
        "CallSid": "CA00000000000000000000000000000002",
        "StreamEvent": "stream-started",
        "StreamName": "MZ00000000000000000000000000000003",
        "StreamSid": "MZ00000000000000000000000000000003",
        "Timestamp": "2025-01-01T00:00:00.000Z",
    }
    url = "https://voice.example.com/twilio/stream-status"
    assert validate_request(TOKEN, url, params, "doSD6ccWkn7uxgGe9amIT4YjmLI=")


def test_own_json_body_vector() -> None:
    body = b'{"CallSid":"CA00000000000000000000000000000002","StreamEvent":"stream-started"}'
    url = (
        "https://voice.example.com/twilio/events?bodySHA256="
        "10e8327dd69293c889394cfaa24a058273bc74bdb5d92a3db130ac9c80380325"
    )
    assert validate_json_request(TOKEN, url, body, "QAcEjwc61Uqe1sBUkAXhAY2yE/k=")


WSS = "wss://voice.example.com/twilio/stream"


def test_websocket_upgrade_vectors() -> None:
    assert compute_signature(TOKEN, WSS, {}) == "glVYh1t/0Dvf+h7sOwB2wdefrc8="
    assert validate_ws_upgrade(TOKEN, WSS, "glVYh1t/0Dvf+h7sOwB2wdefrc8=")
    assert compute_signature(TOKEN, WSS + "/", {}) == "+GvhpXVgVZnbzeZGBHqOOYAeGA4="
    # Twilio's docs suggest also trying the trailing slash.
    assert validate_ws_upgrade(TOKEN, WSS, "+GvhpXVgVZnbzeZGBHqOOYAeGA4=")
    assert not validate_ws_upgrade(TOKEN, WSS, None)


def test_https_signature_is_not_accepted_for_the_wss_url() -> None:
    bug = "YLBFU7j+9N2asEIdhfasmQxodZc="
    assert compute_signature(TOKEN, "https://voice.example.com/twilio/stream", {}) == bug
    assert not validate_ws_upgrade(TOKEN, WSS, bug)
    assert not validate_request(TOKEN, WSS, {}, bug)
    # A proxy reporting https for the upgrade is mapped back to wss before checking.
    assert not validate_ws_upgrade(TOKEN, "https://voice.example.com/twilio/stream", bug)
    assert validate_ws_upgrade(
        TOKEN, "https://voice.example.com/twilio/stream", "glVYh1t/0Dvf+h7sOwB2wdefrc8="
    )


def test_public_urls() -> None:
    assert public_ws_url("https://h", "/twilio/media") == "wss://h/twilio/media"
    assert public_ws_url("http://h:8080/", "twilio/media") == "ws://h:8080/twilio/media"
    assert public_ws_url("https://h/x", "/twilio/media") == "wss://h/x/twilio/media"
    assert public_http_url("https://h/", "/twilio/voice") == "https://h/twilio/voice"
    with pytest.raises(ValueError, match="query"):
        public_ws_url("https://h/?a=1", "/twilio/media")
    with pytest.raises(ValueError, match="scheme"):
        public_ws_url("ftp://h", "/twilio/media")
    with pytest.raises(ValueError, match="host"):
        public_ws_url("voice.example.com", "/twilio/media")
