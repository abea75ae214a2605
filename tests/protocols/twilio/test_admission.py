"""StreamAdmission: which media streams may open a model session. No sockets, no asyncio."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def start(call_sid: str = CALL, **params: str) -> Start:
    return Start(
        stream_sid=STREAM,
        call_sid=call_sid,
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


# --- properties over sequences of webhooks, streams and hang-ups --------------------------------
# The bridge's order, modelled without I/O: redeem the token for the admission's `ref`, take
# the outbound intent only when the token was valid, ask whether the CallSid already has a
# stream, then `decide`. Tokens come from the real `StreamTokens`; intents and live calls are
# a dict and a set, as their stores behave (`take` removes, a hang-up frees the CallSid).
CALLS = [CALL, OTHER_CALL, "CA" + "1" * 32]
TTL_S = 60.0

answer_call = st.tuples(st.just("answer"), st.sampled_from(CALLS))
place_call = st.tuples(st.just("place"), st.sampled_from(["", *CALLS]))
stream = st.tuples(
    st.just("stream"),
    st.integers(0, 3),  # which token: 0 the newest issued, 1 the one before...
    st.sampled_from(["honest", "honest", "mismatched", "forged"]),
    st.sampled_from(CALLS),  # unless honest, these three are drawn freely
    st.booleans(),  # claims to be outbound
    st.integers(-1, 4),  # which of our references it names; out of range: an unknown one
)
hang_up = st.tuples(st.just("hang_up"), st.sampled_from(CALLS))
wait = st.tuples(st.just("wait"), st.sampled_from([1.0, 5.0, TTL_S]))  # the last expires all
steps = st.lists(
    st.one_of(answer_call, place_call, stream, stream, stream, hang_up, wait),
    min_size=4,
    max_size=40,
)


@dataclass
class Issued:
    token: str
    bound_to: str  # a CallSid (inbound) or our reference (outbound)
    expires_at: float


@settings(max_examples=400)
@given(steps)
def test_a_sequence_of_streams_is_admitted_exactly_by_the_rules(steps: list[tuple]) -> None:
    tokens = StreamTokens(ttl_s=TTL_S, secret=b"k" * 32)
    now = 0.0
    issued: list[Issued] = []
    presented: set[str] = set()  # any attempt burns a token
    intents: dict[str, Intent] = {}  # our reference -> the call we placed, until taken
    refs: list[str] = []
    live: dict[str, str] = {}  # CallSid -> the token that admitted its stream
    admitted_tokens: list[str] = []
    taken_refs: list[str] = []
    for step in steps:
        match step:
            case ("answer", call_sid):  # the signed voice webhook for an inbound call
                issued.append(Issued(tokens.issue(call_sid, now), call_sid, now + TTL_S))
            case ("place", intent_call_sid):  # we dial out: an intent and a token for its ref
                ref = f"out_{len(refs)}"
                refs.append(ref)
                intents[ref] = Intent(CALLEE, f"purpose {ref}", intent_call_sid)
                issued.append(Issued(tokens.issue(ref, now), ref, now + TTL_S))
            case ("hang_up", call_sid):
                live.pop(call_sid, None)
            case ("wait", seconds):
                now += seconds
            case ("stream", which, kind, call_sid, outbound, ref_index):
                # A forged token, or one issued (before any was: forged too).
                chosen = (
                    None if kind == "forged" or not issued else issued[-1 - which % len(issued)]
                )
                token = chosen.token if chosen else f"forged-{which}"
                ref = refs[ref_index] if 0 <= ref_index < len(refs) else "out_unknown"
                if kind == "honest" and chosen is not None:
                    outbound = chosen.bound_to in refs
                    if outbound:
                        ref = chosen.bound_to
                    else:
                        call_sid = chosen.bound_to
                params = {"token": token, "caller": CALLER, "to": OURS}
                if outbound:
                    params |= {"direction": "outbound", "ref": ref}
                admission = StreamAdmission(start(call_sid, **params))
                token_valid = tokens.redeem(admission.token, admission.ref, now)
                intent = None
                if token_valid and admission.direction == "outbound":
                    intent = intents.pop(admission.ref, None)
                verdict = admission.decide(
                    token_valid=token_valid, intent=intent, call_live=call_sid in live
                )
                # What the rules say, from the model alone.
                fresh = chosen is not None and token not in presented
                bound = chosen is not None and chosen.bound_to == (ref if outbound else call_sid)
                unexpired = chosen is not None and now < chosen.expires_at
                intent_ok = not outbound or (
                    intent is not None and intent.call_sid in ("", call_sid)
                )
                expected = fresh and bound and unexpired and call_sid not in live and intent_ok
                presented.add(token)
                if not expected:
                    assert verdict == Refused(REFUSAL)  # one reason, whichever check failed
                    continue
                assert isinstance(verdict, Admitted) and verdict.call_sid == call_sid
                if outbound:
                    assert intent is not None
                    assert (verdict.number, verdict.purpose) == (CALLEE, f"purpose {ref}")
                    taken_refs.append(ref)
                else:
                    assert (verdict.number, verdict.to, verdict.purpose) == (CALLER, OURS, "")
                live[call_sid] = token
                admitted_tokens.append(token)
    # A token admits at most one stream; an intent is used up by at most one stream.
    assert len(admitted_tokens) == len(set(admitted_tokens))
    assert len(taken_refs) == len(set(taken_refs))
    assert all(ref not in intents for ref in taken_refs)


@given(st.lists(st.sampled_from(CALLS), min_size=1, max_size=12))
def test_a_call_sid_gets_one_stream_however_many_valid_tokens_it_has(
    attempts: list[str],
) -> None:
    """Each attempt carries a fresh, valid token for its CallSid: only the first per CallSid
    is admitted while that call is live."""
    tokens = StreamTokens(ttl_s=TTL_S, secret=b"k" * 32)
    live: set[str] = set()
    admitted: list[str] = []
    for call_sid in attempts:
        admission = StreamAdmission(
            start(call_sid, token=tokens.issue(call_sid, 0.0), caller=CALLER)
        )
        verdict = admission.decide(
            token_valid=tokens.redeem(admission.token, admission.ref, 1.0),
            intent=None,
            call_live=call_sid in live,
        )
        if isinstance(verdict, Admitted):
            live.add(call_sid)
            admitted.append(call_sid)
        else:
            assert verdict == Refused(REFUSAL) and call_sid in live
    assert admitted == list(dict.fromkeys(attempts))  # the first attempt of each, in order
