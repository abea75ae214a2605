"""Gatekeeper rules from config (`[[policy.rules]]`), validated once at start-up.

A rule matches a tool call by tool name (or "*"), risk, caller role and channel; it may add
argument conditions, all of which must hold. Its `action` is allow, ask or deny. Example:

    [[policy.rules]]
    tool = "send_sms"
    role = "owner"
    action = "allow"
    reason = "the owner may text himself"
    when = [{arg = "to", equals_owner = true}]

Condition keys (exactly one test per condition besides `arg`):
`equals` (value), `in` (list), `matches` (regex, whole value), `equals_owner` (bool: the
value is one of the owner's numbers), `equals_caller` (bool: the value is the caller's own
number). Phone numbers are compared after dropping spaces, dashes, dots and parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from foreman.exceptions import ConfigError
from foreman.policy.context import CallContext, Channel, Role
from foreman.policy.decision import RISKS

Action = Literal["allow", "ask", "deny"]
ACTIONS: tuple[Action, ...] = ("allow", "ask", "deny")
_RULE_KEYS = frozenset({"tool", "risk", "role", "channel", "action", "reason", "when"})
_TESTS = frozenset({"equals", "in", "matches", "equals_owner", "equals_caller"})
_PHONE_JUNK = re.compile(r"[\s\-().]")
_PHONE_SHAPED = re.compile(r"\+?[0-9\s\-().]+")


def normalize_number(value: str) -> str:
    """`+1 (555) 010-0000` -> `+15550100000`; anything else (a SIP URI, a `client:`
    identity) is returned stripped: its dots and brackets are part of it, and removing them
    would make `sip:ann@pbx.example.com` the same caller as `sip:ann@pbxexample.com`."""
    value = value.strip()
    if _PHONE_SHAPED.fullmatch(value):
        return _PHONE_JUNK.sub("", value)
    return value


@dataclass(frozen=True)
class Condition:
    arg: str
    test: str  # one of _TESTS
    value: Any

    def holds(self, arguments: Mapping[str, Any], ctx: CallContext, owners: frozenset[str]) -> bool:
        if self.arg not in arguments:
            return False
        actual = arguments[self.arg]
        if self.test == "equals":
            return bool(actual == self.value)
        if self.test == "in":
            return actual in self.value
        if not isinstance(actual, str):
            return False
        if self.test == "matches":
            return re.fullmatch(self.value, actual) is not None
        number = normalize_number(actual)
        if self.test == "equals_owner":
            return (number in owners) is bool(self.value)
        # equals_caller
        is_caller = bool(ctx.caller_id) and number == normalize_number(ctx.caller_id)
        return is_caller is bool(self.value)


@dataclass(frozen=True)
class Rule:
    """One `[[policy.rules]]` entry; empty tuples match anything."""

    action: Action
    tools: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()
    channels: tuple[Channel, ...] = ()
    when: tuple[Condition, ...] = ()
    reason: str = ""

    def matches_target(self, tool: str, risk: str, ctx: CallContext) -> bool:
        """Tool, risk, role and channel match (argument conditions not checked)."""
        return (
            (not self.tools or tool in self.tools or "*" in self.tools)
            and (not self.risks or risk in self.risks)
            and (not self.roles or ctx.role in self.roles)
            and (not self.channels or ctx.channel in self.channels)
        )

    def matches(
        self,
        tool: str,
        risk: str,
        arguments: Mapping[str, Any],
        ctx: CallContext,
        owners: frozenset[str],
    ) -> bool:
        return self.matches_target(tool, risk, ctx) and all(
            c.holds(arguments, ctx, owners) for c in self.when
        )

    def describe(self, index: int) -> str:
        return self.reason or f"policy rule {index} ({self.action})"


def parse_rules(raw: Sequence[Mapping[str, Any]], source: str = "<config>") -> list[Rule]:
    """Turn config tables into rules. Raises ConfigError naming `policy.rules[i].key`."""
    return [_parse_rule(item, i, source) for i, item in enumerate(raw)]


def _parse_rule(item: Mapping[str, Any], i: int, source: str) -> Rule:
    where = f"{source}: 'policy.rules[{i}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}' must be a table")
    for key in item:
        if key not in _RULE_KEYS:
            raise ConfigError(f"{where}.{key}' is not a rule key (valid: {_list(_RULE_KEYS)})")
    if "action" not in item:
        raise ConfigError(f"{where}.action' is required (allow, ask or deny)")
    action = item["action"]
    if action not in ACTIONS:
        raise ConfigError(f"{where}.action' must be allow, ask or deny, got {action!r}")
    reason = item.get("reason", "")
    if not isinstance(reason, str):
        raise ConfigError(f"{where}.reason' must be a string")
    return Rule(
        action=action,
        tools=_names(item, "tool", where, None),
        risks=_names(item, "risk", where, RISKS),
        roles=tuple(Role(v) for v in _names(item, "role", where, tuple(r.value for r in Role))),
        channels=tuple(
            Channel(v) for v in _names(item, "channel", where, tuple(c.value for c in Channel))
        ),
        when=_conditions(item.get("when", []), where),
        reason=reason,
    )


def _names(
    item: Mapping[str, Any], key: str, where: str, valid: tuple[str, ...] | None
) -> tuple[str, ...]:
    value = item.get(key, ())
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}.{key}' must be a string or a list of strings")
    for v in values:
        if valid is not None and v not in valid and v != "*":
            raise ConfigError(f"{where}.{key}' has {v!r} (valid: {', '.join(valid)})")
    if "*" in values:
        return ()
    return tuple(values)


def _conditions(raw: Any, where: str) -> tuple[Condition, ...]:
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"{where}.when' must be a list of tables")
    out = []
    for j, cond in enumerate(raw):
        at = f"{where}.when[{j}]"
        if not isinstance(cond, Mapping):
            raise ConfigError(f"{at}' must be a table")
        unknown = set(cond) - _TESTS - {"arg"}
        if unknown:
            raise ConfigError(
                f"{at}.{sorted(unknown)[0]}' is not a condition key (valid: arg, {_list(_TESTS)})"
            )
        arg = cond.get("arg")
        if not isinstance(arg, str) or not arg:
            raise ConfigError(f"{at}.arg' is required: the argument name to test")
        tests = [k for k in cond if k in _TESTS]
        if len(tests) != 1:
            raise ConfigError(f"{at}' needs exactly one of {_list(_TESTS)}")
        test = tests[0]
        value = cond[test]
        if test == "in" and not isinstance(value, list | tuple):
            raise ConfigError(f"{at}.in' must be a list")
        if test in ("equals_owner", "equals_caller") and not isinstance(value, bool):
            raise ConfigError(f"{at}.{test}' must be true or false")
        if test == "matches":
            if not isinstance(value, str):
                raise ConfigError(f"{at}.matches' must be a regular expression string")
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(f"{at}.matches' is not a valid regex: {exc}") from None
        out.append(Condition(arg=arg, test=test, value=tuple(value) if test == "in" else value))
    return tuple(out)


def _list(keys: frozenset[str]) -> str:
    return ", ".join(sorted(keys))
