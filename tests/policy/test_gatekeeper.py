"""Gatekeeper rules, defaults, the unknown-caller floor, and what is offered."""

from __future__ import annotations

import pytest

from foreman.exceptions import ConfigError
from foreman.policy import (
    Allow,
    CallContext,
    Channel,
    Deny,
    Gatekeeper,
    NeedsApproval,
    Role,
    ToolCall,
    parse_rules,
)

OWNER = "+15550100001"


def ctx(role: Role = Role.OWNER, channel: Channel = Channel.PHONE, **kw: object) -> CallContext:
    return CallContext(session_id="s1", channel=channel, role=role, **kw)  # type: ignore[arg-type]


def sms(to: str, risk: str = "high") -> ToolCall:
    return ToolCall("c1", "send_sms", {"to": to, "body": "hi"}, risk)  # type: ignore[arg-type]


class _Spec:
    def __init__(self, name: str, risk: str) -> None:
        self.name, self.risk = name, risk


SPECS = {n: _Spec(n, r) for n, r in [("send_sms", "high"), ("get_time", "low")]}


def test_defaults_low_allowed_high_asks() -> None:
    gk = Gatekeeper([])
    assert isinstance(gk.decide(ToolCall("c", "get_time", {}, "low"), ctx()), Allow)
    decision = gk.decide(sms("+15550199999"), ctx(Role.CONTACT))
    assert isinstance(decision, NeedsApproval)
    assert not decision.voice_confirmable


def test_voice_confirmable_only_for_verified_owner_on_voice() -> None:
    gk = Gatekeeper([])
    yes = gk.decide(sms("+1555"), ctx(Role.OWNER, verified=True))
    assert isinstance(yes, NeedsApproval) and yes.voice_confirmable
    for c in (
        ctx(Role.OWNER, verified=False),
        ctx(Role.CONTACT, verified=True),
        ctx(Role.OWNER, Channel.CHAT, verified=True),
    ):
        d = gk.decide(sms("+1555"), c)
        assert isinstance(d, NeedsApproval) and not d.voice_confirmable, c
    local = gk.decide(sms("+1555"), ctx(Role.OWNER, Channel.LOCAL_VOICE, verified=True))
    assert isinstance(local, NeedsApproval) and local.voice_confirmable


def test_unknown_caller_never_gets_high_risk_even_if_a_rule_allows() -> None:
    gk = Gatekeeper(parse_rules([{"tool": "*", "action": "allow"}]))
    assert isinstance(gk.decide(sms(OWNER), ctx(Role.UNKNOWN)), Deny)
    assert not gk.offered("send_sms", "high", ctx(Role.UNKNOWN))
    assert gk.offered("get_time", "low", ctx(Role.UNKNOWN))
    assert isinstance(gk.decide(ToolCall("c", "get_time", {}, "low"), ctx(Role.UNKNOWN)), Allow)


def test_sms_to_owner_allowed_by_argument_condition() -> None:
    rules = parse_rules(
        [
            {
                "tool": "send_sms",
                "role": ["owner", "contact"],
                "action": "allow",
                "when": [{"arg": "to", "equals_owner": True}],
                "reason": "texting the owner",
            }
        ]
    )
    gk = Gatekeeper(rules, owner_numbers=[OWNER])
    allowed = gk.decide(sms("+1 (555) 010-0001"), ctx(Role.CONTACT))
    assert allowed == Allow("texting the owner")
    assert isinstance(gk.decide(sms("+15550100002"), ctx(Role.CONTACT)), NeedsApproval)


def test_first_matching_rule_wins_and_config_before_defaults() -> None:
    rules = parse_rules(
        [
            {"tool": "get_time", "channel": "chat", "action": "deny", "reason": "not in chat"},
            {"tool": "get_time", "action": "ask"},
            {"tool": "get_time", "action": "allow"},
        ]
    )
    gk = Gatekeeper(rules)
    t = ToolCall("c", "get_time", {}, "low")
    assert gk.decide(t, ctx(channel=Channel.CHAT)) == Deny("not in chat")
    assert isinstance(gk.decide(t, ctx()), NeedsApproval)
    assert not gk.offered("get_time", "low", ctx(channel=Channel.CHAT))
    assert gk.offered("get_time", "low", ctx())


@pytest.mark.parametrize(
    ("cond", "args", "expected"),
    [
        ({"arg": "n", "equals": 3}, {"n": 3}, True),
        ({"arg": "n", "equals": 3}, {"n": 4}, False),
        ({"arg": "n", "in": [1, 2]}, {"n": 2}, True),
        ({"arg": "n", "in": [1, 2]}, {}, False),
        ({"arg": "s", "matches": r"\+44\d+"}, {"s": "+44123"}, True),
        ({"arg": "s", "matches": r"\+44\d+"}, {"s": "x+44123"}, False),
        ({"arg": "s", "matches": r"\+44\d+"}, {"s": 44}, False),
        ({"arg": "to", "equals_caller": True}, {"to": "+15550100009"}, True),
        ({"arg": "to", "equals_owner": False}, {"to": "+15550100009"}, True),
    ],
)
def test_conditions(cond: dict[str, object], args: dict[str, object], expected: bool) -> None:
    gk = Gatekeeper(
        parse_rules([{"tool": "t", "action": "deny", "when": [cond]}]), owner_numbers=[OWNER]
    )
    d = gk.decide(ToolCall("c", "t", args, "low"), ctx(caller_id="+15550100009"))
    assert isinstance(d, Deny) is expected


def test_conditional_deny_still_offers_the_tool() -> None:
    gk = Gatekeeper(
        parse_rules(
            [
                {
                    "tool": "send_sms",
                    "action": "deny",
                    "when": [{"arg": "to", "matches": r"\+1900.*"}],
                }
            ]
        )
    )
    assert gk.offered("send_sms", "high", ctx())
    assert isinstance(gk.decide(sms("+19005551234"), ctx()), Deny)


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"tool": "x"}, "policy.rules[0].action"),
        ({"action": "maybe"}, "policy.rules[0].action"),
        ({"action": "allow", "acton": 1}, "policy.rules[0].acton"),
        ({"action": "allow", "role": "boss"}, "policy.rules[0].role"),
        ({"action": "allow", "channel": ["sms"]}, "policy.rules[0].channel"),
        ({"action": "allow", "risk": "medium"}, "policy.rules[0].risk"),
        ({"action": "allow", "when": [{"arg": "to"}]}, "policy.rules[0].when[0]"),
        ({"action": "allow", "when": [{"equals": 1}]}, "policy.rules[0].when[0].arg"),
        ({"action": "allow", "when": [{"arg": "a", "matches": "("}]}, "when[0].matches"),
        ({"action": "allow", "when": [{"arg": "a", "in": 3}]}, "when[0].in"),
        ({"action": "allow", "when": [{"arg": "a", "equals_owner": "yes"}]}, "equals_owner"),
        ({"action": "allow", "when": [{"arg": "a", "bigger": 1}]}, "when[0].bigger"),
    ],
)
def test_bad_rules_name_index_and_key(rule: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=__import__("re").escape(fragment)):
        Gatekeeper.build([rule], owner_numbers=[], tools=SPECS)


def test_build_rejects_rules_for_unknown_tools_and_reads_owners() -> None:
    with pytest.raises(ConfigError, match=r"policy.rules\[1\].tool.*'sendsms'"):
        Gatekeeper.build(
            [{"action": "allow"}, {"tool": "sendsms", "action": "allow"}],
            owner_numbers=[],
            tools=SPECS,
        )
    gk = Gatekeeper.build(
        [{"tool": "send_sms", "action": "allow", "when": {"arg": "to", "equals_owner": True}}],
        owner_numbers=[OWNER],
        tools=SPECS,
    )
    assert isinstance(gk.decide(sms(OWNER), ctx(Role.CONTACT)), Allow)


def test_rules_from_toml_config() -> None:
    import tomllib

    from foreman.config import settings_from_dict

    text = """
[identity]
owner_numbers = ["+15550100001"]

[[policy.rules]]
tool = "send_sms"
role = ["owner", "contact"]
action = "allow"
when = [{arg = "to", equals_owner = true}]
"""
    settings = settings_from_dict(tomllib.loads(text), source="foreman.toml")
    gk = Gatekeeper.build(
        settings.policy.rules, owner_numbers=settings.identity.owner_numbers, tools=SPECS
    )
    assert isinstance(gk.decide(sms(OWNER), ctx(Role.CONTACT)), Allow)
    assert isinstance(gk.decide(sms("+15550100009"), ctx(Role.CONTACT)), NeedsApproval)
