"""The voice webhook's form without sockets: the field count is bounded before parsing,
repeated fields keep every value, the call's fields are checked, and a long caller rides
to the media stream in pieces that each fit one TwiML <Parameter>."""

from __future__ import annotations

from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foreman.protocols.twilio.twiml import connect_stream_twiml
from foreman.protocols.twilio.webhook import (
    MAX_PARTY_CHARS,
    FormTooLarge,
    InvalidWebhook,
    inbound_call,
    join_parameter,
    parse_form,
    split_parameter,
)

SID = "CA" + "0123456789abcdef" * 2


def test_too_many_fields_are_refused_before_parsing() -> None:
    body = b"&".join([b"Junk=x"] * 150_000)
    with pytest.raises(FormTooLarge, match="more than 200 fields"):
        parse_form(body, max_fields=200)
    assert len(parse_form(b"&".join([b"a=1"] * 200), max_fields=200)["a"]) == 200


def test_repeated_fields_keep_every_value_in_order() -> None:
    body = urlencode([("a", "1"), ("b", "x"), ("a", "2"), ("a", "3"), ("c", "")]).encode()
    assert parse_form(body, max_fields=10) == {"a": ["1", "2", "3"], "b": "x", "c": ""}


def test_a_body_that_is_not_utf8_is_read_with_replacements() -> None:
    fields = parse_form(b"From=%FF%FE&To=\xff", max_fields=10)
    assert fields == {"From": "\ufffd\ufffd", "To": "\ufffd"}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"CallSid": "CA" + "b" * 600}, "CallSid must be CA followed by 32 hex digits"),
        ({"CallSid": SID + "0"}, "CallSid"),
        ({"CallSid": "XX" + SID[2:]}, "CallSid"),
        ({}, "CallSid must be CA followed by 32 hex digits (missing)"),
        ({"CallSid": SID, "From": "x" * (MAX_PARTY_CHARS + 1)}, "From is 2049 characters long"),
        ({"CallSid": SID, "To": "+1555\x01"}, "To contains control characters"),
        ({"CallSid": SID, "From": "a\ufffeb"}, "From contains control characters"),
    ],
)
def test_fields_twilio_never_sends_are_refused_in_one_line(
    fields: dict[str, str], problem: str
) -> None:
    with pytest.raises(InvalidWebhook) as err:
        inbound_call(fields)
    assert problem in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 100


def test_a_sip_caller_is_a_caller() -> None:
    sip = "sip:" + "a" * 1500 + "@pbx.example.com;transport=tls"
    call = inbound_call({"CallSid": SID, "From": [sip, "ignored"], "To": "+15550009999"})
    assert (call.call_sid, call.caller, call.to) == (SID, sip, "+15550009999")


@given(
    st.sampled_from(["caller", "to", "a", "x" * 60]),
    st.text(max_size=3 * MAX_PARTY_CHARS),
)
def test_split_parameters_fit_twiml_and_join_back(name: str, value: str) -> None:
    pieces = split_parameter(name, value)
    assert all(len(k) + len(v) < 500 for k, v in pieces.items())
    assert join_parameter(pieces, name) == value
    assert join_parameter({**pieces, "other": "x"}, name) == value


def test_a_long_caller_in_twiml_arrives_whole() -> None:
    sip = "sip:" + "bob.example." * 100 + "@pbx.example.com"
    xml = connect_stream_twiml(
        "wss://voice.example.com/twilio/media", {"token": "t", **split_parameter("caller", sip)}
    )
    stream = ElementTree.fromstring(xml).find("./Connect/Stream")
    assert stream is not None
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    assert len(params) > 2 and join_parameter(params, "caller") == sip
