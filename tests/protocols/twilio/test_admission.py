"""StreamAdmission: which media streams may open a model session. No sockets, no asyncio."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from foreman.protocols.twilio.admission import REFUSAL, Admitted, Refused, StreamAdmission
from foreman.protocols.twilio.messages import Start
from foreman.protocols.twilio.tokens import StreamTokens
from foreman.protocols.twilio.webhook import split_parameter

CALL = "CA53b9e9679a8ea25880376080b76f98ad"
OTHER_CALL = "CA00000000000000000000000000000000"
STREAM = "MZf7b44cfafd5c52223d5498196c8a2e7b"
CALLER, OURS, CALLEE = "+14155550100", "+14155550199", "+4930123456"


@dataclass(frozen=True)
class Intent:
    to: str
    purpose: str
    call_sid: str = ""


def start(**params: str) -> Start:
    return Start(
        stream_sid=STREAM,
        call_sid=CALL,
        account_sid="AC4c122831efef10ac68b5223dccd6f614",
        tracks=("inbound",),
        custom_parameters=params,
        encoding="audio/x-mulaw",
        sample_rate=8000,
        channels=1,
    )


INBOUND = start(token="tok_in", caller=CALLER, to=OURS)
OUTBOUND = start(token="tok_out", direction="outbound", ref="out_7")


# --- what a token is bound to -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "direction", "ref", "token"),
    [
        ({"token": "t", "caller": CALLER}, "inbound", CALL, "t"),
        ({"token": "t", "ref": "out_7"}, "inbound", CALL, "t"),  # inbound ignores any ref
        ({"token": "t", "direction": "inbound"}, "inbound", CALL, "t"),
        ({"token": "t", "direction": "Outbound", "ref": "out_7"}, "inbound", CALL, "t"),
        ({"token": "t", "direction": "outbound", "ref": "out_7"}, "outbound", "out_7", "t"),
        ({"direction": "outbound"}, "outbound", "", ""),  # missing: empty, never redeemable
        ({}, "inbound", CALL, ""),
    ],
)
def test_direction_ref_and_token_come_from_the_start(
    params: dict[str, str], direction: str, ref: str, token: str
) -> None:
    admission = StreamAdmission(start(**params))
    assert (admission.direction, admission.ref, admission.token) == (direction, ref, token)


def test_tokens_bind_inbound_streams_to_the_call_and_outbound_ones_to_our_ref() -> None:
    tokens = StreamTokens()
    inbound_token = tokens.issue(CALL, now=0.0)
    outbound_token = tokens.issue("out_7", now=0.0)
    inbound = StreamAdmission(start(token=inbound_token))
    outbound = StreamAdmission(start(token=outbound_token, direction="outbound", ref="out_7"))
    assert tokens.redeem(inbound.token, inbound.ref, now=1.0)
    assert tokens.redeem(outbound.token, outbound.ref, now=1.0)
    # The same token presented as the other direction is bound to something else.
    swapped_in = tokens.issue("out_7", now=0.0)
    assert not tokens.redeem(swapped_in, StreamAdmission(start(token=swapped_in)).ref, now=1.0)


# --- decisions --------------------------------------------------------------------------------
def test_an_inbound_stream_with_a_redeemed_token_is_admitted() -> None:
    verdict = StreamAdmission(INBOUND).decide(token_valid=True, intent=None, call_live=False)
    assert verdict == Admitted(CALL, STREAM, "inbound", CALLER, OURS, "")


def test_a_caller_split_over_several_parameters_is_put_back_together() -> None:
    sip = "sip:" + "x" * 1200 + "@pbx.example.com"
    params = {"token": "t", **split_parameter("caller", sip), **split_parameter("to", OURS)}
    verdict = StreamAdmission(start(**params)).decide(
        token_valid=True, intent=None, call_live=False
    )
    assert verdict == Admitted(CALL, STREAM, "inbound", sip, OURS, "")


@pytest.mark.parametrize("intent_call_sid", ["", CALL])
def test_an_outbound_stream_takes_number_and_purpose_from_its_intent(
    intent_call_sid: str,
) -> None:
    intent = Intent(CALLEE, "remind about the 3pm meeting", intent_call_sid)
    verdict = StreamAdmission(OUTBOUND).decide(token_valid=True, intent=intent, call_live=False)
    assert verdict == Admitted(
        CALL, STREAM, "outbound", CALLEE, CALLEE, "remind about the 3pm meeting"
    )


def test_an_inbound_stream_ignores_an_intent() -> None:
    verdict = StreamAdmission(INBOUND).decide(
        token_valid=True, intent=Intent(CALLEE, "x", OTHER_CALL), call_live=False
    )
    assert isinstance(verdict, Admitted) and verdict.direction == "inbound"


INTENTS = [None, Intent(CALLEE, "p"), Intent(CALLEE, "p", CALL), Intent(CALLEE, "p", OTHER_CALL)]


@pytest.mark.parametrize(
    ("start_msg", "token_valid", "intent", "call_live"),
    list(itertools.product([INBOUND, OUTBOUND], [True, False], INTENTS, [True, False])),
)
def test_every_combination_is_admitted_exactly_when_all_checks_pass(
    start_msg: Start, token_valid: bool, intent: Intent | None, call_live: bool
) -> None:
    admission = StreamAdmission(start_msg)
    verdict = admission.decide(token_valid=token_valid, intent=intent, call_live=call_live)
    outbound_ok = intent is not None and intent.call_sid in ("", CALL)
    should_admit = (
        token_valid and not call_live and (admission.direction == "inbound" or outbound_ok)
    )
    if should_admit:
        assert isinstance(verdict, Admitted)
        assert verdict.call_sid == CALL and verdict.direction == admission.direction
    else:
        # One fixed reason: a refusal never tells a prober which check failed.
        assert verdict == Refused(REFUSAL)
