"""Built-in executors that need no outside service: end_call and get_time."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from foreman.exceptions import ToolError
from foreman.tools.executors.base import Invocation, ToolResult


async def end_call(args: dict[str, Any], inv: Invocation) -> ToolResult:
    """Synthetic: the session finishes the goodbye audio, hangs up, returns to text mode.

    No follow-up response is requested: the model has already said goodbye (its
    instructions ask it to before calling end_call), and a new response would talk over
    the hang-up."""
    reason = str(args.get("reason") or "").strip()
    # The session records "end_call" plus the model's words, whichever path ended the call.
    inv.session.request_end(f"end_call: {reason}" if reason else "end_call")
    return ToolResult({"status": "ending", "reason": reason or "goodbye"}, respond=False)


async def get_time(args: dict[str, Any], inv: Invocation) -> dict[str, Any]:
    tz_name = args.get("timezone") or inv.spec.options.get("timezone") or "UTC"
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {tz_name!r}; use an IANA name like Europe/Paris"
        raise ToolError(msg) from None
    now = dt.datetime.fromtimestamp(inv.clock.wall(), tz)
    return {
        "iso": now.isoformat(timespec="seconds"),
        "timezone": tz_name,
        "weekday": now.strftime("%A"),
        "spoken": now.strftime("%A %d %B %Y, %H:%M"),
    }
