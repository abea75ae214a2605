"""Executors: the code a tool spec's `executor` string binds to."""

from __future__ import annotations

from foreman.config import CalendarConfig, EmailConfig, TwilioConfig
from foreman.tools.executors import builtin, calendar, email
from foreman.tools.executors.base import (
    BoundExecutor,
    Executor,
    ExecutorRegistry,
    ExtraModule,
    Invocation,
    Needs,
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
    """Every built-in executor, each bound to its own config section only and declaring what
    it needs from it, plus the http / python / plugin resolvers (which get the spec's
    options). end_call and get_time need nothing: they are always available."""
    tw = TwilioExecutors(twilio, client=twilio_client)
    # A client handed in (the server's, or a test's) already holds the credentials.
    credentials = () if twilio_client is not None else ("account_sid", "auth_token")
    sms = Needs("twilio", (*credentials, "from_number"))
    call = Needs("twilio", (*credentials, "from_number", "public_url"))
    mail = Needs("email", ("host", "from_addr"))
    caldav = Needs("calendar", modules=(ExtraModule("caldav", "calendar", when="caldav_url"),))
    registry = ExecutorRegistry(
        {
            "end_call": builtin.end_call,
            "get_time": builtin.get_time,
            "place_call": BoundExecutor(tw.place_call, twilio, call),
            "send_sms": BoundExecutor(tw.send_sms, twilio, sms),
            "send_email": BoundExecutor(email.send_email, email_config, mail),
            "calendar_list": BoundExecutor(calendar.calendar_list, calendar_config, caldav),
            "calendar_create": BoundExecutor(calendar.calendar_create, calendar_config, caldav),
        },
        {"http": resolve_http, "python": resolve_python, "plugin": resolve_entry_point},
    )
    registry.on_close(tw.aclose)
    return registry


__all__ = [
    "BoundExecutor",
    "Executor",
    "ExecutorRegistry",
    "ExtraModule",
    "Invocation",
    "Needs",
    "Resolver",
    "ToolResult",
    "default_registry",
]
