"""Who is calling: the `From` number mapped to a policy role."""

from __future__ import annotations

from foreman.config import IdentityConfig
from foreman.policy.context import CallContext, Channel, Role
from foreman.policy.rules import normalize_number  # one definition of "the same number"


def identify(
    number: str, identity: IdentityConfig, *, session_id: str, verified: bool
) -> CallContext:
    """Map a caller number to OWNER / CONTACT / UNKNOWN.

    `verified` is true only when the number came through a signature-checked Twilio
    request; an unverified owner number still gets the owner role for greetings, but the
    policy sees `verified=False` and must not grant owner-only actions on it.
    """
    num = normalize_number(number)
    if num and num in {normalize_number(n) for n in identity.owner_numbers}:
        return CallContext(
            session_id=session_id,
            channel=Channel.PHONE,
            role=Role.OWNER,
            caller_id=num,
            caller_name=identity.owner_name,
            verified=verified,
        )
    for name, contact in identity.contacts.items():
        if num and normalize_number(contact) == num:
            return CallContext(
                session_id=session_id,
                channel=Channel.PHONE,
                role=Role.CONTACT,
                caller_id=num,
                caller_name=name,
                verified=verified,
            )
    return CallContext(
        session_id=session_id,
        channel=Channel.PHONE,
        role=Role.UNKNOWN,
        caller_id=num or number,
        verified=verified,
    )
