"""What the model asked for and what the gatekeeper answered: small frozen records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Risk = Literal["low", "high"]
RISKS: tuple[Risk, ...] = ("low", "high")


@dataclass(frozen=True)
class ToolCall:
    """One tool call from the model, with arguments already parsed and schema-checked."""

    call_id: str
    name: str
    arguments: dict[str, Any] = field(hash=False)
    risk: Risk = "low"


@dataclass(frozen=True, slots=True)
class Allow:
    """Run the tool now."""

    reason: str = "allowed"


@dataclass(frozen=True, slots=True)
class Deny:
    """Do not run it; tell the model `denied: <reason>`."""

    reason: str


@dataclass(frozen=True, slots=True)
class NeedsApproval:
    """Hold the call until a human answers; `voice_confirmable` means the owner on this call
    may also answer with a spoken yes instead of an approval."""

    reason: str
    voice_confirmable: bool = False


Decision = Allow | Deny | NeedsApproval
