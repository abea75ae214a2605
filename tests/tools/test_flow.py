"""ToolCallFlow: every decision about one tool call, on the real tool specs. No asyncio."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from foreman.policy.approvals import Approval, ApprovalBook, ApprovalState
from foreman.policy.context import CallContext, Channel, Role
from foreman.policy.decision import Allow, Deny, NeedsApproval, ToolCall
from foreman.policy.gatekeeper import Gatekeeper
from foreman.tools.flow import Prepared, Rejected, Run, ToolCallFlow
from foreman.tools.outputs import Outcome
from foreman.tools.request import ToolRequest
from foreman.tools.spec import load_tool_specs

from .conftest import OWNER, TOOLS_DIR, contact_ctx, owner_ctx

SPECS = load_tool_specs(TOOLS_DIR)
SMS = {"to": "+15550100002", "body": "Running late"}
UNKNOWN = CallContext("s1", Channel.PHONE, Role.UNKNOWN, caller_id="+15559999999")


def flow(rules: list[dict[str, Any]] | None = None) -> ToolCallFlow:
    gatekeeper = Gatekeeper.build(rules or [], owner_numbers=[OWNER], tools=SPECS)
    return ToolCallFlow(SPECS, gatekeeper)


def prepare(name: str, arguments: str) -> Prepared | Rejected:
    return flow().prepare(ToolRequest("call_1", name, arguments))


# --- prepare ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("get_time", "{}", {}),
        ("get_time", "", {}),  # no arguments at all: the empty object
        ("get_time", '{"timezone": "Europe/Berlin"}', {"timezone": "Europe/Berlin"}),
        ("send_sms", json.dumps(SMS), SMS),
        ("calendar_list", '{"days": 2.5}', {"days": 2.5}),
    ],
)
def test_prepared_calls_carry_parsed_arguments_and_the_spec_risk(
    name: str, arguments: str, expected: dict[str, Any]
) -> None:
    prepared = prepare(name, arguments)
    assert isinstance(prepared, Prepared)
    assert prepared.spec is SPECS[name]
    assert prepared.call == ToolCall("call_1", name, expected, SPECS[name].risk)


# (name, arguments, words the message must contain, what the audit keeps)
REJECTIONS: list[tuple[str, str, list[str], Any]] = [
    ("launch_rocket", '{"to": "moon"}',
     ["unknown tool 'launch_rocket'", "available: calendar_create, calendar_list, end_call"],
     {"to": "moon"}),
    ("launch_rocket", "{oops", ["unknown tool"], "{oops"),
    ("get_time", '{"timezone": ', ["not valid JSON", "Expecting value at position 13",
                                   "call again"], '{"timezone": '),
    ("get_time", "[1, 2]", ["must be a JSON object", "call again"], [1, 2]),
    ("get_time", '"UTC"', ["must be a JSON object"], "UTC"),
    ("get_time", "null", ["must be a JSON object"], None),
    ("send_sms", '{"to": "555"}', ["invalid arguments", "body", "to: '555' does not match",
                                   "correct them and call again"], {"to": "555"}),
    ("get_time", '{"tz": "UTC"}', ["invalid arguments", "'tz' was unexpected"], {"tz": "UTC"}),
    ("send_email", '{"to": ["not-an-email"], "subject": "s", "body": "b"}',
     ["invalid arguments", "to/0", "is not a 'email'"],
     {"to": ["not-an-email"], "subject": "s", "body": "b"}),
    # Python reads these, but they are not JSON, and NaN passes every range check.
    ("calendar_list", '{"days": NaN}', ["not valid JSON", "NaN is not a JSON value"],
     '{"days": NaN}'),
    ("calendar_list", '{"days": Infinity}', ["not valid JSON", "Infinity"],
     '{"days": Infinity}'),
    ("calendar_list", '{"days": ' + "9" * 5000 + "}", ["not valid JSON", "integer"],
     '{"days": ' + "9" * 5000 + "}"),
    ("get_time", "[" * 100_000, ["not valid JSON", "nested too deeply"], "[" * 100_000),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "arguments", "words", "kept"),
    REJECTIONS,
    ids=[f"{name} {arguments[:24]}" for name, arguments, *_ in REJECTIONS],
)
def test_calls_that_cannot_run_get_an_error_the_model_can_correct(
    name: str, arguments: str, words: list[str], kept: Any
) -> None:
    rejected = prepare(name, arguments)
    assert isinstance(rejected, Rejected)
    for word in words:
        assert word in rejected.message
    assert "\n" not in rejected.message
    assert rejected.arguments == kept  # the audit log records what the model sent


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from([*SPECS, "nope"]),
    arguments=st.one_of(
        st.text(max_size=40),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=8,
        ).map(json.dumps),
    ),
)
@example(name="calendar_list", arguments='{"days": NaN}')
@example(name="get_time", arguments="[" * 5000)
def test_prepare_never_raises_and_only_schema_valid_json_objects_pass(
    name: str, arguments: str
) -> None:
    result = prepare(name, arguments)
    if isinstance(result, Prepared):
        parsed = json.loads(arguments or "{}")
        assert result.call.arguments == parsed and isinstance(parsed, dict)
        SPECS[name].validate(parsed)
        json.dumps(result.call.arguments, allow_nan=False)  # strict JSON for the audit log
    else:
        assert result.message and "\n" not in result.message


# --- decide ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "arguments", "ctx", "rules", "expected"),
    [
        ("get_time", {}, contact_ctx(), [], Allow),
        ("get_time", {}, UNKNOWN, [], Allow),
        ("send_sms", SMS, owner_ctx(), [], NeedsApproval),
        ("send_sms", SMS, contact_ctx(), [], NeedsApproval),
        ("send_sms", SMS, UNKNOWN, [], Deny),  # the floor
        ("send_sms", SMS, UNKNOWN, [{"tool": "send_sms", "action": "allow"}], Deny),
        ("send_sms", SMS, owner_ctx(), [{"tool": "send_sms", "action": "allow"}], Allow),
        ("get_time", {}, owner_ctx(), [{"tool": "get_time", "action": "deny"}], Deny),
    ],
)
def test_decide_asks_the_gatekeeper(
    name: str, arguments: dict[str, Any], ctx: CallContext, rules: list[Any], expected: type
) -> None:
    f = flow(rules)
    prepared = f.prepare(ToolRequest("call_1", name, json.dumps(arguments)))
    assert isinstance(prepared, Prepared)
    assert type(f.decide(prepared, ctx)) is expected


@pytest.mark.parametrize(
    ("ctx", "offered_high"),
    [(owner_ctx(), True), (contact_ctx(), True), (UNKNOWN, False)],
)
def test_an_unknown_caller_is_never_offered_a_high_risk_tool(
    ctx: CallContext, offered_high: bool
) -> None:
    offered = {spec.name for spec in flow().offered(ctx)}
    high = {name for name, spec in SPECS.items() if spec.risk == "high"}
    low = set(SPECS) - high
    assert low <= offered
    assert (high <= offered) is offered_high and (not (high & offered)) is not offered_high


# --- pending_note ---------------------------------------------------------------------------------
def pending(ctx: CallContext) -> tuple[Prepared, NeedsApproval]:
    f = flow()
    prepared = f.prepare(ToolRequest("call_1", "send_sms", json.dumps({**SMS, "body": "Grüße"})))
    assert isinstance(prepared, Prepared)
    decision = f.decide(prepared, ctx)
    assert isinstance(decision, NeedsApproval)
    return prepared, decision


@pytest.mark.parametrize(
    ("ctx", "asks_yes_no"),
    [
        (owner_ctx(), True),
        (owner_ctx(verified=False), False),  # an unsigned call may not confirm by voice
        (owner_ctx(channel=Channel.CHAT), False),  # typed: no spoken answer
        (contact_ctx(), False),
    ],
)
def test_the_pending_note_says_not_done_and_asks_the_verified_owner_by_voice(
    ctx: CallContext, asks_yes_no: bool
) -> None:
    prepared, decision = pending(ctx)
    assert decision.voice_confirmable is asks_yes_no
    note = ToolCallFlow.pending_note(prepared, decision)
    assert "send_sms" in note and "waiting for the owner's approval" in note
    assert "NOT been done yet" in note and "do not say it is done" in note
    assert "Grüße" in note  # the action is named as the model asked for it
    assert ("clear yes or no" in note) is asks_yes_no
    assert ("You are speaking with the owner" in note) is asks_yes_no


# --- settle ---------------------------------------------------------------------------------------
def finished(state: ApprovalState, note: str | None = None) -> Approval:
    book = ApprovalBook()
    prepared, _ = pending(owner_ctx())
    approval = book.open(call=prepared.call, ctx=owner_ctx(), now=0.0, timeout_s=120.0)
    if state is ApprovalState.APPROVED:
        return book.answer(approval.id, True, approver="owner", note=note, now=1.0)
    if state is ApprovalState.DENIED:
        return book.answer(approval.id, False, approver="owner", note=note, now=1.0)
    if state is ApprovalState.EXPIRED:
        [expired] = book.expire_due(now=120.0)
        return expired
    return book.cancel(approval.id, now=1.0, note="session ended")


@pytest.mark.parametrize(
    ("state", "note", "timeout_s", "error"),
    [
        (ApprovalState.DENIED, None, 120.0, "denied by owner; the action was NOT done"),
        (ApprovalState.DENIED, "not today", 120.0,
         "denied by owner: not today; the action was NOT done"),
        (ApprovalState.EXPIRED, None, 120.0,
         "approval timed out after 120 s; the action was NOT done"),
        (ApprovalState.EXPIRED, None, 2.5,
         "approval timed out after 2.5 s; the action was NOT done"),
    ],
)  # fmt: skip
def test_settle_without_approval_is_an_error_output_saying_not_done(
    state: ApprovalState, note: str | None, timeout_s: float, error: str
) -> None:
    verdict = ToolCallFlow.settle(finished(state, note), timeout_s)
    assert isinstance(verdict, Outcome)
    assert (verdict.ok, verdict.outcome, verdict.respond) == (False, "not run", True)
    assert json.loads(verdict.output) == {"ok": False, "error": error}


def test_settle_approved_runs_it_and_cancelled_tells_nobody() -> None:
    assert isinstance(ToolCallFlow.settle(finished(ApprovalState.APPROVED), 120.0), Run)
    assert ToolCallFlow.settle(finished(ApprovalState.CANCELLED), 120.0) is None
