"""calendar_create / calendar_list against Radicale (real CalDAV on loopback) and against the
embedded local .ics file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import caldav
import pytest
from pydantic import SecretStr

from foreman.config import CalendarConfig
from foreman.exceptions import ToolError

from .servers import start_radicale
from .test_executors import invoke


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalendarConfig]:
    proc, port = start_radicale(tmp_path_factory.mktemp("radicale"))
    try:
        client = caldav.DAVClient(url=f"http://127.0.0.1:{port}/", username="owner", password="pw")
        client.principal().make_calendar(name="Foreman", cal_id="foreman")
        yield CalendarConfig(
            caldav_url=f"http://127.0.0.1:{port}/owner/foreman/",
            username="owner",
            password=SecretStr("pw"),
        )
    finally:
        proc.terminate()
        proc.wait(10)


async def test_caldav_create_then_list(radicale: CalendarConfig) -> None:
    created = await invoke(
        "calendar_create",
        {
            "title": "Dentist",
            "start": "2026-11-24T15:00:00+01:00",
            "duration_minutes": 45,
            "location": "High Street",
        },
        calendar=radicale,
    )
    assert created["status"] == "created" and created["end"] == "2026-11-24T15:45:00+01:00"
    # the server really has it (read with a separate client)
    cal = caldav.DAVClient(url=radicale.caldav_url, username="owner", password="pw").calendar(
        url=radicale.caldav_url
    )
    summaries = [str(e.icalendar_component["summary"]) for e in cal.events()]
    assert "Dentist" in summaries
    listed = await invoke(
        "calendar_list", {"start": "2026-11-24T00:00:00+01:00", "days": 1}, calendar=radicale
    )
    assert [(e["title"], e["uid"]) for e in listed["events"]] == [("Dentist", created["uid"])]
    later = await invoke(
        "calendar_list", {"start": "2026-11-26T00:00:00+01:00", "days": 3}, calendar=radicale
    )
    assert later["events"] == []


async def test_caldav_unreachable_is_a_tool_error(radicale: CalendarConfig) -> None:
    bad = CalendarConfig(
        caldav_url="http://127.0.0.1:9/nothing/", username="u", password=SecretStr("p")
    )
    with pytest.raises(ToolError, match="calendar unavailable"):
        await invoke("calendar_list", {}, calendar=bad)


async def test_local_ics_is_the_embedded_default(tmp_path: Path) -> None:
    config = CalendarConfig(ics_path=str(tmp_path / "sub" / "cal.ics"))
    a = await invoke(
        "calendar_create",
        {"title": "Standup", "start": "2026-11-23T09:00:00", "end": "2026-11-23T09:15:00"},
        calendar=config,
    )
    await invoke(
        "calendar_create", {"title": "Lunch", "start": "2026-11-23T12:00:00"}, calendar=config
    )
    assert (tmp_path / "sub" / "cal.ics").read_bytes().count(b"BEGIN:VEVENT") == 2
    out = await invoke(
        "calendar_list", {"start": "2026-11-23T08:00:00Z", "days": 0.1}, calendar=config
    )
    assert [e["title"] for e in out["events"]] == ["Standup"]
    assert out["events"][0]["uid"] == a["uid"] and out["events"][0]["start"].startswith(
        "2026-11-23T09:00:00"
    )
    with pytest.raises(ToolError, match="end must be after start"):
        await invoke(
            "calendar_create",
            {"title": "x", "start": "2026-11-23T10:00:00", "end": "2026-11-23T09:00:00"},
            calendar=config,
        )
    with pytest.raises(ToolError, match="not an ISO 8601"):
        await invoke("calendar_create", {"title": "x", "start": "tomorrow"}, calendar=config)
