from __future__ import annotations

from foreman.config import IdentityConfig
from foreman.phone.identity import identify, normalize_number
from foreman.policy.context import Channel, Role

IDENT = IdentityConfig(
    owner_name="Godfather",
    owner_numbers=["+1 415 555 0100"],
    contacts={"Ann": "+1-415-555-0111"},
)


def test_owner_contact_unknown() -> None:
    owner = identify("+14155550100", IDENT, session_id="s", verified=True)
    assert (owner.role, owner.caller_name, owner.verified) == (Role.OWNER, "Godfather", True)
    assert owner.channel is Channel.PHONE and owner.session_id == "s"
    ann = identify("+14155550111", IDENT, session_id="s", verified=True)
    assert (ann.role, ann.caller_name) == (Role.CONTACT, "Ann")
    other = identify("+14155550199", IDENT, session_id="s", verified=True)
    assert other.role is Role.UNKNOWN and other.caller_id == "+14155550199"


def test_withheld_number_is_unknown_and_unverified_stays_unverified() -> None:
    anon = identify("anonymous", IDENT, session_id="s", verified=True)
    assert anon.role is Role.UNKNOWN
    owner = identify("+14155550100", IDENT, session_id="s", verified=False)
    assert owner.role is Role.OWNER and owner.verified is False


def test_normalize() -> None:
    assert normalize_number(" +1 (415) 555-0100 ") == "+14155550100"
