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


def test_a_sip_caller_keeps_its_uri_and_a_look_alike_is_not_the_owner() -> None:
    sip = IdentityConfig(owner_numbers=["sip:ann@pbx.example.com"])
    owner = identify(" sip:ann@pbx.example.com ", sip, session_id="s", verified=True)
    assert owner.role is Role.OWNER and owner.caller_id == "sip:ann@pbx.example.com"
    # Dots and brackets are part of a URI: removing them made these two the same caller.
    look_alikes = ("sip:ann@pbxexample.com", "sip:ann@pbx.example.c-om", "sip:a.nn@pbx.example.com")
    for look_alike in look_alikes:
        other = identify(look_alike, sip, session_id="s", verified=True)
        assert other.role is Role.UNKNOWN and other.caller_id == look_alike
    assert normalize_number("sip:+1 (415) 555-0100@pbx.example.com") == (
        "sip:+1 (415) 555-0100@pbx.example.com"
    )
