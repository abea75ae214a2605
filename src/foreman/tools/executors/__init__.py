"""Executors: the code a tool spec's `executor` string binds to."""

from __future__ import annotations

from foreman.config import CalendarConfig, EmailConfig, TwilioConfig
from foreman.tools.executors import builtin, calendar, email
from foreman.tools.executors.base import (
    BoundExecutor,
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
    *,
    twilio: TwilioConfig,
    email_config: EmailConfig,
    calendar_config: CalendarConfig,
    twilio_client: TwilioClient | None = None,
) -> ExecutorRegistry:
    """Every built-in executor, each bound to its own config section only, plus the
    http / python / plugin resolvers (which get the spec's options)."""
    tw = TwilioExecutors(twilio, client=twilio_client)
    registry = ExecutorRegistry(
        {
            "end_call": builtin.end_call,
            "get_time": builtin.get_time,
            "place_call": tw.place_call,
            "send_sms": tw.send_sms,
            "send_email": BoundExecutor(email.send_email, email_config),
            "calendar_list": BoundExecutor(calendar.calendar_list, calendar_config),
            "calendar_create": BoundExecutor(calendar.calendar_create, calendar_config),
        },
        {"http": resolve_http, "python": resolve_python, "plugin": resolve_entry_point},
    )
    registry.on_close(tw.aclose)
    return registry


__all__ = [
    "BoundExecutor",
    "Executor",
    "ExecutorRegistry",
    "Invocation",
    "Resolver",
    "ToolResult",
    "default_registry",
]
