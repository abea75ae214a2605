"""Pure decision code: who may run which tool, and the approval state machine.

Nothing here imports asyncio, sleeps or reads the clock: time is passed in.
"""

from foreman.policy.approvals import (
    AlreadyAnswered,
    Approval,
    ApprovalBook,
    ApprovalState,
    UnknownApproval,
)
from foreman.policy.confirm import Confirmation, VoiceConfirmation
from foreman.policy.context import CallContext, Channel, Role
from foreman.policy.decision import Allow, Decision, Deny, NeedsApproval, Risk, ToolCall
from foreman.policy.gatekeeper import Gatekeeper
from foreman.policy.rules import Condition, Rule, normalize_number, parse_rules

__all__ = [
    "Allow",
    "AlreadyAnswered",
    "Approval",
    "ApprovalBook",
    "ApprovalState",
    "CallContext",
    "Channel",
    "Condition",
    "Confirmation",
    "Decision",
    "Deny",
    "Gatekeeper",
    "NeedsApproval",
    "Risk",
    "Role",
    "Rule",
    "ToolCall",
    "UnknownApproval",
    "VoiceConfirmation",
    "normalize_number",
    "parse_rules",
]
