"""`StreamAdmission`: may this media stream open a model session? Decided without I/O.

A media socket whose upgrade signature was checked still proves little on its own: the
`start` message must carry the single-use stream token issued by the (signed) voice webhook
for this very call, an outbound call must match an intent we created, and a CallSid gets
one stream. Only then is a backend created, so an unauthenticated or replayed socket never
costs a model session. The asyncio side reads `token` and `ref`, redeems the token and takes
the intent from their stores, and passes the answers to `decide`.
Security notes: https://www.twilio.com/docs/usage/security
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from foreman.protocols.twilio.messages import Start
from foreman.protocols.twilio.webhook import join_parameter

__all__ = ["Admitted", "IntentLike", "Refused", "StreamAdmission"]

Direction = Literal["inbound", "outbound"]
REFUSAL = "invalid or reused stream token"


class IntentLike(Protocol):
    """An outbound call we placed (what the store keeps)."""

    @property
    def to(self) -> str: ...

    @property
    def purpose(self) -> str: ...

    @property
    def call_sid(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Admitted:
    call_sid: str
    stream_sid: str
    direction: Direction
    number: str  # the other party: the caller, or whom we called
    to: str
    purpose: str


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


class StreamAdmission:
    def __init__(self, start: Start) -> None:
        self.start = start
        params = start.custom_parameters
        self.direction: Direction = (
            "outbound" if params.get("direction") == "outbound" else "inbound"
        )
        # Inbound tokens are bound to the CallSid; outbound ones to our own reference, since
        # the CallSid is not known when the TwiML is written.
        self.ref = params.get("ref", "") if self.direction == "outbound" else start.call_sid
        self.token = params.get("token", "")

    def decide(
        self, *, token_valid: bool, intent: IntentLike | None, call_live: bool
    ) -> Admitted | Refused:
        """`token_valid`: the token was redeemed for `ref`; `intent`: the outbound intent
        taken for `ref` (None inbound); `call_live`: the CallSid already has a stream."""
        start = self.start
        params = start.custom_parameters
        if not token_valid or call_live:
            return Refused(REFUSAL)
        if self.direction == "outbound":
            if intent is None or (intent.call_sid and intent.call_sid != start.call_sid):
                return Refused(REFUSAL)
            return Admitted(
                start.call_sid, start.stream_sid, "outbound", intent.to, intent.to, intent.purpose
            )
        return Admitted(
            start.call_sid,
            start.stream_sid,
            "inbound",
            join_parameter(params, "caller"),  # a long SIP URI comes in pieces
            join_parameter(params, "to"),
            "",
        )
