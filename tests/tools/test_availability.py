"""A tool whose service or extra is missing is not offered to the model; a call to it anyway
is answered with the fix; start-up names all of them in one line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from foreman.bus import EventBus
from foreman.clock import ManualClock
from foreman.config import CalendarConfig, EmailConfig, Settings, TwilioConfig
from foreman.testing.memory_twilio import MemoryTwilio
from foreman.tools.executors import ExtraModule, Needs
from foreman.tools.services import build_tool_services

from .conftest import FakeSession, Jobs, make_settings, owner_ctx, registry_for
from .test_dispatcher import SMS, audit_rows, req

TWILIO_FIX = (
    "set [twilio] account_sid (or TWILIO_ACCOUNT_SID), auth_token (or TWILIO_AUTH_TOKEN), "
    "from_number"
)
ALWAYS = {"end_call", "get_time"}


def unavailable(settings: Settings, twilio_client: Any = None) -> dict[str, str]:
    registry = registry_for(settings, twilio_client)
    names = ("end_call", "get_time", "send_sms", "place_call", "send_email", "calendar_list")
    reasons = {name: registry._table[name].unavailable() for name in names}
    return {name: why for name, why in reasons.items() if why is not None}


def configured_twilio() -> TwilioConfig:
    return TwilioConfig(
        account_sid="AC" + "1" * 32,
        auth_token=SecretStr("tw-token"),
        from_number="+15550109999",
        public_url="https://voice.example.com",
    )


# --- what each executor needs ----------------------------------------------------------


def test_unset_keys_are_named_with_their_environment_variable() -> None:
    needs = Needs("twilio", ("account_sid", "auth_token", "from_number"))
    assert needs.missing(TwilioConfig()) == TWILIO_FIX
    # An empty secret is not a secret.
    half = TwilioConfig(account_sid="AC1", auth_token=SecretStr(""), from_number="+1555")
    assert needs.missing(half) == "set [twilio] auth_token (or TWILIO_AUTH_TOKEN)"
    assert needs.missing(configured_twilio()) is None


def test_a_module_is_needed_only_when_its_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    needs = Needs("calendar", modules=(ExtraModule("caldav", "calendar", when="caldav_url"),))
    monkeypatch.setitem(sys.modules, "caldav", None)  # as if the extra were not installed
    assert needs.missing(CalendarConfig()) is None  # the local .ics file needs nothing
    assert needs.missing(CalendarConfig(caldav_url="https://dav.example.com/cal/")) == (
        "install the calendar extra: pip install 'foreman-voice[calendar]' "
        "(caldav is not installed; [calendar] caldav_url is set)"
    )
    monkeypatch.delitem(sys.modules, "caldav")
    assert needs.missing(CalendarConfig(caldav_url="https://dav.example.com/cal/")) is None


def test_the_default_executors_declare_their_services(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = unavailable(Settings())
    assert bare == {
        "send_sms": TWILIO_FIX,
        "place_call": TWILIO_FIX + ", public_url",
        "send_email": "set [email] host, from_addr",
    }
    everything = Settings().replace(
        twilio=configured_twilio(),
        email=EmailConfig(host="smtp.example.com", from_addr="me@example.com"),
    )
    assert unavailable(everything) == {}
    # A Twilio client handed in holds the credentials; the caller id is still needed.
    given_client = unavailable(Settings(), MemoryTwilio("MZ1"))
    assert given_client["send_sms"] == "set [twilio] from_number"
    monkeypatch.setitem(sys.modules, "caldav", None)
    dav = Settings().replace(calendar=CalendarConfig(caldav_url="https://dav.example.com/"))
    assert "foreman-voice[calendar]" in unavailable(dav)["calendar_list"]
    assert not ALWAYS & set(unavailable(dav))


# --- the dispatcher ----------------------------------------------------------------------


@pytest.fixture
async def bare_services(tmp_path: Path) -> Any:
    """The real executors, nothing configured: no Twilio, no mail server."""
    settings = make_settings(tmp_path)
    svc = build_tool_services(
        settings, EventBus(), clock=ManualClock(), executors=registry_for(settings)
    )
    svc.jobs = Jobs(svc)
    yield svc
    await svc.jobs.drain(wait_s=1)
    await svc.aclose()


async def test_unavailable_tools_are_not_offered_and_a_call_gets_the_fix(
    bare_services: Any,
) -> None:
    offered = {t["name"] for t in bare_services.dispatcher.tool_definitions(owner_ctx())}
    assert offered >= ALWAYS and "calendar_list" in offered
    assert not {"send_sms", "place_call", "send_email"} & offered

    session = FakeSession(owner_ctx())
    await bare_services.jobs.handle(req("send_sms", SMS, "c1"), session)
    await bare_services.jobs.handle(req("fly", {}, "c2"), session)
    assert session.results["c1"] == {"ok": False, "error": f"not available: {TWILIO_FIX}"}
    assert "send_sms" not in session.results["c2"]["error"]  # not listed as available
    # Nobody was asked to approve something that cannot run.
    assert bare_services.approvals.pending() == [] and session.notes == []
    rows = await audit_rows(bare_services)
    assert [(r["tool"], r["decision"]) for r in rows] == [
        ("send_sms", "unavailable"),
        ("fly", "invalid"),
    ]


def test_start_up_names_every_unavailable_tool_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)
    with caplog.at_level(logging.INFO, logger="foreman.tools.services"):
        build_tool_services(settings, EventBus(), executors=registry_for(settings))
    (line,) = [r.getMessage() for r in caplog.records if "not offered" in r.getMessage()]
    assert line == (
        f"tools not offered to the model: send_sms ({TWILIO_FIX}); "
        f"place_call ({TWILIO_FIX}, public_url); send_email (set [email] host, from_addr) "
        f"(config: {settings.source})"
    )

    caplog.clear()
    ready = settings.replace(
        twilio=configured_twilio(), email=EmailConfig(host="mx.example.com", from_addr="a@b.c")
    )
    with caplog.at_level(logging.INFO, logger="foreman.tools.services"):
        build_tool_services(ready, EventBus(), executors=registry_for(ready))
    assert not [r for r in caplog.records if "not offered" in r.getMessage()]
