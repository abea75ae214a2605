"""The gatekeeper: `decide(call, ctx) -> Allow | Deny | NeedsApproval`, pure.

Order of checks (first that answers wins):
1. A hard floor no rule can lift: an unknown caller never gets a high-risk action (it is not
   offered, and it is denied if the model asks anyway).
2. Config rules, in file order.
3. Defaults: low risk is allowed; high risk asks the owner.

"ask" becomes `NeedsApproval`; it is voice-confirmable only when the caller is the verified
owner on a voice channel: only the owner may approve an action by saying yes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from foreman.exceptions import ConfigError
from foreman.policy.context import CallContext, Channel, Role
from foreman.policy.decision import Allow, Decision, Deny, NeedsApproval, ToolCall
from foreman.policy.rules import Rule, normalize_number, parse_rules

_VOICE_CHANNELS = frozenset({Channel.PHONE, Channel.LOCAL_VOICE})


class HasRisk(Protocol):
    """What the gatekeeper needs from a tool spec (tools.ToolSpec satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def risk(self) -> str: ...


class Gatekeeper:
    def __init__(self, rules: Sequence[Rule], *, owner_numbers: Sequence[str] = ()) -> None:
        self._rules = tuple(rules)
        self._owners = frozenset(normalize_number(n) for n in owner_numbers if n)

    @classmethod
    def build(
        cls,
        raw_rules: Sequence[Mapping[str, Any]],
        *,
        owner_numbers: Sequence[str],
        tools: Mapping[str, HasRisk],
    ) -> Gatekeeper:
        """Validate the `[[policy.rules]]` tables; raises ConfigError naming
        `policy.rules[i].key`. A rule naming a tool that does not exist is an error too."""
        rules = parse_rules(raw_rules)
        for i, rule in enumerate(rules):
            for name in rule.tools:
                if name != "*" and name not in tools:
                    raise ConfigError(
                        f"'policy.rules[{i}].tool' names unknown tool {name!r} "
                        f"(known: {', '.join(sorted(tools)) or 'none'})"
                    )
        return cls(rules, owner_numbers=owner_numbers)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def decide(self, call: ToolCall, ctx: CallContext) -> Decision:
        """Answer one call. The caller runs the tool only on `Allow`."""
        if ctx.role is Role.UNKNOWN and call.risk == "high":
            return Deny("high-risk actions are not available to unknown callers")
        for index, rule in enumerate(self._rules):
            if rule.matches(call.name, call.risk, call.arguments, ctx, self._owners):
                return self._apply(rule.action, rule.describe(index), ctx)
        if call.risk == "low":
            return Allow("low risk")
        return self._apply("ask", f"{call.name} is high risk and needs the owner's approval", ctx)

    def offered(self, spec_name: str, risk: str, ctx: CallContext) -> bool:
        """Whether the tool goes into this session's tool list.

        False when every possible call would be denied: the unknown-caller floor, or the first
        rule whose target matches is an unconditional deny.
        """
        if ctx.role is Role.UNKNOWN and risk == "high":
            return False
        for rule in self._rules:
            if not rule.matches_target(spec_name, risk, ctx):
                continue
            if rule.when:
                if rule.action != "deny":
                    return True  # some arguments pass this rule
                continue  # only some arguments are denied; later rules decide the rest
            return rule.action != "deny"
        return True

    def _apply(self, action: str, reason: str, ctx: CallContext) -> Decision:
        if action == "allow":
            return Allow(reason)
        if action == "deny":
            return Deny(reason)
        return NeedsApproval(reason, voice_confirmable=self.voice_confirmable(ctx))

    @staticmethod
    def voice_confirmable(ctx: CallContext) -> bool:
        return ctx.role is Role.OWNER and ctx.verified and ctx.channel in _VOICE_CHANNELS

    def is_owner_number(self, number: Any) -> bool:
        return isinstance(number, str) and normalize_number(number) in self._owners
