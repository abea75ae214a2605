"""Slow run: the voice webhook's form and fields, and Realtime endpoint URLs, 10,000
examples each. A body is parsed or refused with one of the two documented errors; an
accepted call always makes TwiML that parses, with every parameter under Twilio's size
limit and the caller and callee coming back whole; an endpoint URL that passes the check
is one urllib and the websockets client take without raising."""

from __future__ import annotations

from urllib.parse import quote, urlencode
from xml.etree import ElementTree

import pytest
from fuzz_strategies import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from websockets.uri import parse_uri

from foreman.io.realtime_ws import needs_api_key, realtime_url
from foreman.protocols.realtime.endpoint import endpoint_problem
from foreman.protocols.twilio.admission import StreamAdmission
from foreman.protocols.twilio.messages import Start
from foreman.protocols.twilio.twiml import connect_stream_twiml
from foreman.protocols.twilio.webhook import (
    FormTooLarge,
    InvalidWebhook,
    inbound_call,
    parse_form,
    split_parameter,
)

pytestmark = pytest.mark.slow

SID = st.just("CA" + "a" * 32) | st.text("CAabcdefABCDEF0123456789g", max_size=40)
PARTY = st.one_of(
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    st.text(max_size=40).map(lambda u: f"sip:{u}@pbx.example.com"),
    st.text(max_size=3000),
    st.text(st.characters(codec="utf-8"), max_size=600),
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={"CallSid": SID, "From": PARTY, "To": PARTY, "AccountSid": st.text(max_size=40)},
)


@FUZZ
@given(st.binary(max_size=2000) | FIELDS.map(lambda f: urlencode(f).encode()))
def test_any_body_is_parsed_or_refused_with_a_documented_error(body: bytes) -> None:
    try:
        fields = parse_form(body, max_fields=200)
        call = inbound_call(fields)
    except (FormTooLarge, InvalidWebhook) as exc:
        assert str(exc) and "\n" not in str(exc) and len(str(exc)) < 120
        return
    assert call.call_sid.startswith("CA") and len(call.call_sid) == 34


@FUZZ
@given(FIELDS)
def test_an_accepted_call_makes_twiml_that_carries_it_whole(fields: dict[str, str]) -> None:
    try:
        call = inbound_call(fields)
    except InvalidWebhook:
        return
    xml = connect_stream_twiml(
        "wss://voice.example.com/twilio/media",
        {
            "token": "t" * 32,
            "call_sid": call.call_sid,
            **split_parameter("caller", call.caller),
            **split_parameter("to", call.to),
            "direction": "inbound",
        },
    )
    stream = ElementTree.fromstring(xml).find("./Connect/Stream")
    assert stream is not None
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    assert all(len(k) + len(v) < 500 for k, v in params.items())
    start = Start("MZ1", call.call_sid, "AC1", ("inbound",), params, "audio/x-mulaw", 8000, 1)
    admitted = StreamAdmission(start).decide(token_valid=True, intent=None, call_live=False)
    assert admitted.number == fields.get("From", "")  # type: ignore[union-attr]
    assert admitted.to == fields.get("To", "")  # type: ignore[union-attr]


URLISH = st.one_of(
    st.text(max_size=80),
    st.tuples(
        st.sampled_from(["ws://", "wss://", "WS://", "http://", ""]),
        st.one_of(
            st.text(max_size=30),
            st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True),
            st.sampled_from(["[::1]", "[::1", "127.0.0.1", "api.openai.com", "[zz]", ""]),
        ),
        st.one_of(
            st.just(""), st.integers(-5, 100_000).map(lambda p: f":{p}"), st.text(max_size=6)
        ),
        st.text(max_size=20).map(lambda p: "/" + quote(p, safe="/?=&#@")),
    ).map("".join),
)


@FUZZ
@given(URLISH)
def test_an_endpoint_that_passes_the_check_can_be_dialled(url: str) -> None:
    problem = endpoint_problem(url)
    if problem is not None:
        assert "\n" not in problem and len(problem) < 100
        return
    parse_uri(realtime_url(url, "gpt-realtime-2.1"))  # websockets' own URL check
    needs_api_key(url)
