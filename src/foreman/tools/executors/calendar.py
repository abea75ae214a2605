"""calendar_list / calendar_create: CalDAV (`caldav` library) when `[calendar] caldav_url` is
set, else a local `.ics` file (icalendar) as the embedded default.

Both back ends are blocking, so each operation runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from foreman.config import CalendarConfig
from foreman.exceptions import ToolError
from foreman.tools.executors.base import Invocation


class CalendarStore(Protocol):
    def events(self, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]: ...

    def add(self, event: icalendar.Event) -> None: ...


def _event_dict(component: Any) -> dict[str, Any]:
    def iso(key: str) -> str | None:
        value = component.get(key)
        return value.dt.isoformat() if value is not None else None

    return {
        "uid": str(component.get("uid", "")),
        "title": str(component.get("summary", "")),
        "start": iso("dtstart"),
        "end": iso("dtend"),
        "location": str(component.get("location", "")) or None,
    }


def _as_aware(value: dt.date | dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class IcsStore:
    """One local .ics file; a lock serialises writers in this process."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()

    def _read(self) -> icalendar.Calendar:
        if not self.path.exists():
            cal = icalendar.Calendar()
            cal.add("prodid", "-//Foreman//calendar//EN")
            cal.add("version", "2.0")
            return cal
        return icalendar.Calendar.from_ical(self.path.read_bytes())

    def events(self, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
        with self._lock:
            cal = self._read()
        out = []
        for ev in cal.walk("VEVENT"):
            ev_start = _as_aware(ev.get("dtstart").dt)
            ev_end = _as_aware(ev.get("dtend").dt) if ev.get("dtend") else ev_start
            if ev_start < end and ev_end > start:
                out.append(_event_dict(ev))
        return sorted(out, key=lambda e: e["start"] or "")

    def add(self, event: icalendar.Event) -> None:
        with self._lock:
            cal = self._read()
            cal.add_component(event)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(cal.to_ical())
            tmp.replace(self.path)  # atomic: a crash never leaves half a calendar


class CalDavStore:
    def __init__(self, config: CalendarConfig) -> None:
        self.config = config

    def _calendar(self) -> Any:
        import caldav

        dav_client: Any = caldav.DAVClient
        client = dav_client(
            url=self.config.caldav_url,
            username=self.config.username or None,
            password=self.config.password.get_secret_value() or None,
        )
        if self.config.calendar_name:
            return client.principal().calendar(name=self.config.calendar_name)
        return client.calendar(url=self.config.caldav_url)

    def events(self, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
        found = self._calendar().search(start=start, end=end, event=True, expand=True)
        out: list[dict[str, Any]] = []
        for obj in found:
            out.extend(_event_dict(c) for c in obj.icalendar_instance.walk("VEVENT"))
        return sorted(out, key=lambda e: e["start"] or "")

    def add(self, event: icalendar.Event) -> None:
        cal = icalendar.Calendar()
        cal.add("prodid", "-//Foreman//calendar//EN")
        cal.add("version", "2.0")
        cal.add_component(event)
        self._calendar().add_event(cal.to_ical().decode())


def store_for(config: CalendarConfig) -> CalendarStore:
    return CalDavStore(config) if config.caldav_url else IcsStore(Path(config.ics_path))


def _tz(inv: Invocation) -> dt.tzinfo:
    name = inv.spec.options.get("timezone", "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"tool option timezone {name!r} is not an IANA zone") from None


def _parse_time(value: str, tz: dt.tzinfo, field: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ToolError(f"{field}: {value!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


async def calendar_list(args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
    tz = _tz(inv)
    start = (
        _parse_time(args["start"], tz, "start")
        if args.get("start")
        else dt.datetime.fromtimestamp(inv.clock.wall(), tz)
    )
    end = start + dt.timedelta(days=float(args.get("days", 7)))
    store = store_for(inv.config)
    try:
        events = await asyncio.to_thread(store.events, start, end)
    except ToolError:
        raise
    except Exception as exc:
        raise ToolError(f"calendar unavailable: {type(exc).__name__}: {exc}") from None
    return {"from": start.isoformat(), "to": end.isoformat(), "events": events}


async def calendar_create(args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
    tz = _tz(inv)
    start = _parse_time(args["start"], tz, "start")
    if args.get("end"):
        end = _parse_time(args["end"], tz, "end")
    else:
        end = start + dt.timedelta(minutes=float(args.get("duration_minutes", 60)))
    if end <= start:
        raise ToolError("end must be after start")
    event = icalendar.Event()
    uid = f"{uuid.uuid4()}@foreman"
    event.add("uid", uid)
    event.add("summary", args["title"])
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("dtstamp", dt.datetime.fromtimestamp(inv.clock.wall(), dt.UTC))
    if args.get("location"):
        event.add("location", args["location"])
    if args.get("description"):
        event.add("description", args["description"])
    store = store_for(inv.config)
    try:
        await asyncio.to_thread(store.add, event)
    except ToolError:
        raise
    except Exception as exc:
        raise ToolError(f"calendar unavailable: {type(exc).__name__}: {exc}") from None
    return {
        "status": "created",
        "uid": uid,
        "title": args["title"],
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
