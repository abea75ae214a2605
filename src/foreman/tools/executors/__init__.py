"""Executors: the code a tool spec's `executor` string binds to."""

from __future__ import annotations

from foreman.config import Settings
from foreman.tools.executors import builtin, calendar, email
from foreman.tools.executors.base import (
    Executor,
    ExecutorRegistry,
    Invocation,
    Resolver,
    ToolResult,
)
from foreman.tools.executors.http import resolve_http
from foreman.tools.executors.plugin import resolve_entry_point, resolve_python
from foreman.tools.executors.twilio import TwilioClient, TwilioExecutors


def default_registry(
    settings: Settings, *, twilio_client: TwilioClient | None = None
) -> ExecutorRegistry:
    """Every built-in executor plus the http / python / plugin resolvers."""
    tw = TwilioExecutors(settings.twilio, client=twilio_client)
    registry = ExecutorRegistry(
        {
            "end_call": builtin.end_call,
            "get_time": builtin.get_time,
            "place_call": tw.place_call,
            "send_sms": tw.send_sms,
            "send_email": email.send_email,
            "calendar_list": calendar.calendar_list,
            "calendar_create": calendar.calendar_create,
        },
        {"http": resolve_http, "python": resolve_python, "plugin": resolve_entry_point},
    )
    registry.on_close(tw.aclose)
    return registry


__all__ = [
    "Executor",
    "ExecutorRegistry",
    "Invocation",
    "Resolver",
    "ToolResult",
    "default_registry",
]
