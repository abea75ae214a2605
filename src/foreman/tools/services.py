"""Everything the tool layer needs, built once from settings: the app keeps it in
`app.state.tools`; the integrator hands `dispatcher` to each CallSession."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from foreman.bus import EventBus
from foreman.clock import Clock, SystemClock
from foreman.config import Settings
from foreman.history.audit import AuditLog
from foreman.policy.gatekeeper import Gatekeeper
from foreman.tools.approval_service import ApprovalService
from foreman.tools.audit import AuditWriter
from foreman.tools.dispatcher import ToolDispatcher
from foreman.tools.executors import default_registry
from foreman.tools.executors.base import ExecutorRegistry
from foreman.tools.executors.twilio import TwilioClient
from foreman.tools.spec import ToolSpec, load_tool_specs


@dataclass
class ToolServices:
    dispatcher: ToolDispatcher
    approvals: ApprovalService
    bus: EventBus
    audit: AuditLog
    gatekeeper: Gatekeeper
    specs: dict[str, ToolSpec]
    clock: Clock
    executors: ExecutorRegistry

    async def aclose(self) -> None:
        """Cancel pending prompts and timers; close the audit database. (Running tools
        belong to their sessions, which end first.)"""
        self.dispatcher.cancel_all()
        await self.approvals.aclose()
        await self.executors.aclose()
        self.audit.close()


def build_tool_services(
    settings: Settings,
    bus: EventBus,
    *,
    clock: Clock | None = None,
    executors: ExecutorRegistry | None = None,
    twilio_client: TwilioClient | None = None,
    specs: dict[str, ToolSpec] | None = None,
) -> ToolServices:
    """Load specs, validate rules and executors (ConfigError on any problem), open the audit
    log. Call at start-up, before serving."""
    clock = clock or SystemClock()
    if specs is None:
        specs = load_tool_specs(
            Path(settings.tools.dir).expanduser(),
            default_timeout_s=settings.tools.default_timeout_s,
        )
    gatekeeper = Gatekeeper.build(
        settings.policy.rules, owner_numbers=settings.identity.owner_numbers, tools=specs
    )
    approvals = ApprovalService(bus, clock, timeout_s=settings.policy.approval_timeout_s)
    audit = AuditLog(settings.storage.db_path)
    registry = executors or default_registry(
        twilio=settings.twilio,
        email_config=settings.email,
        calendar_config=settings.calendar,
        twilio_client=twilio_client,
    )
    dispatcher = ToolDispatcher(
        specs=specs,
        gatekeeper=gatekeeper,
        approvals=approvals,
        executors=registry,
        audit=AuditWriter(audit, bus, clock),
        bus=bus,
        clock=clock,
        still_running_after_s=settings.tools.still_running_after_s,
    )
    return ToolServices(dispatcher, approvals, bus, audit, gatekeeper, specs, clock, registry)
