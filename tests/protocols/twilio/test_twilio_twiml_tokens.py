from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from foreman.protocols.twilio.tokens import StreamTokens
from foreman.protocols.twilio.twiml import connect_stream_twiml, say_hangup_twiml


def test_connect_stream_twiml_parses_back() -> None:
    xml = connect_stream_twiml(
        "wss://voice.example.com/twilio/media",
        {"caller": "+14155550100", "token": "a<b&\"c'"},
        status_callback="https://voice.example.com/twilio/stream-status",
    )
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml)
    assert root.tag == "Response"
    (connect,) = list(root)
    assert connect.tag == "Connect"
    (stream,) = list(connect)
    assert stream.tag == "Stream"
    assert stream.get("url") == "wss://voice.example.com/twilio/media"
    assert stream.get("statusCallback") == "https://voice.example.com/twilio/stream-status"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"caller": "+14155550100", "token": "a<b&\"c'"}


def test_connect_stream_twiml_rejects_what_twilio_rejects() -> None:
    with pytest.raises(ValueError, match="query"):
        connect_stream_twiml("wss://h/twilio/media?token=1", {})
    with pytest.raises(ValueError, match="wss"):
        connect_stream_twiml("https://h/twilio/media", {})
    with pytest.raises(ValueError, match="too long"):
        connect_stream_twiml("wss://h/m", {"n": "x" * 500})


def test_say_hangup_twiml() -> None:
    root = ET.fromstring(say_hangup_twiml("Goodbye & thanks"))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text == "Goodbye & thanks"


def test_token_is_single_use() -> None:
    tokens = StreamTokens(ttl_s=60)
    t = tokens.issue("CA1", now=100.0)
    assert len(t) >= 32
    assert tokens.redeem(t, "CA1", now=101.0)
    assert not tokens.redeem(t, "CA1", now=101.0)


def test_tokens_are_unguessable_and_distinct() -> None:
    tokens = StreamTokens()
    issued = {tokens.issue("CA1", now=0.0) for _ in range(200)}
    assert len(issued) == 200
    assert not tokens.redeem("not-a-token", "CA1", now=0.0)
    assert not tokens.redeem("", "CA1", now=0.0)


def test_token_expires_with_time_passed_in() -> None:
    tokens = StreamTokens(ttl_s=60)
    t = tokens.issue("CA1", now=100.0)
    assert not tokens.redeem(t, "CA1", now=160.0)
    t2 = tokens.issue("CA1", now=100.0)
    assert tokens.redeem(t2, "CA1", now=159.9)


def test_token_for_another_call_is_refused_and_burnt() -> None:
    tokens = StreamTokens()
    t = tokens.issue("CA1", now=0.0)
    assert not tokens.redeem(t, "CA2", now=1.0)
    assert not tokens.redeem(t, "CA1", now=1.0)


def test_purge_forgets_expired_tokens_only() -> None:
    tokens = StreamTokens(ttl_s=10)
    old = tokens.issue("CA1", now=0.0)
    fresh = tokens.issue("CA2", now=5.0)
    tokens.purge(now=12.0)
    assert len(tokens) == 1
    assert not tokens.redeem(old, "CA1", now=12.0)
    assert tokens.redeem(fresh, "CA2", now=12.0)


def test_a_shared_secret_does_not_make_tokens_predictable() -> None:
    a = StreamTokens(secret=b"k" * 32)
    b = StreamTokens(secret=b"k" * 32)
    ta = a.issue("CA1", now=0.0)
    assert not b.redeem(ta, "CA1", now=0.0)  # state is per table, tokens are random
    assert a.redeem(ta, "CA1", now=0.0)
