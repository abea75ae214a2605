"""Everything the tool layer needs, built once from settings: the app keeps it in
`app.state.tools`; the integrator hands `dispatcher` to each CallSession."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from foreman.bus import EventBus
from foreman.clock import Clock, SystemClock
from foreman.config import Settings
from foreman.policy.gatekeeper import Gatekeeper
from foreman.stores.interfaces import ApprovalStore, AuditStore
from foreman.stores.sqlite import SqliteAuditStore
from foreman.tools.approval_service import ApprovalService
from foreman.tools.audit import AuditWriter
from foreman.tools.dispatcher import ToolDispatcher
from foreman.tools.executors import default_registry
from foreman.tools.executors.base import ExecutorRegistry
from foreman.tools.executors.twilio import TwilioClient
from foreman.tools.spec import ToolSpec, load_tool_specs

log = logging.getLogger(__name__)


@dataclass
class ToolServices:
    dispatcher: ToolDispatcher
    approvals: ApprovalService
    bus: EventBus
    audit: AuditStore
    gatekeeper: Gatekeeper
    specs: dict[str, ToolSpec]
    clock: Clock
    executors: ExecutorRegistry
    owns_audit: bool = False

    async def aclose(self) -> None:
        """Cancel pending prompts and timers; close what was opened here. (Running tools
        belong to their sessions, which end first.)"""
        self.dispatcher.cancel_all()
        await self.approvals.aclose()
        await self.executors.aclose()
        if self.owns_audit:
            await self.audit.aclose()


def build_tool_services(
    settings: Settings,
    bus: EventBus,
    *,
    clock: Clock | None = None,
    executors: ExecutorRegistry | None = None,
    twilio_client: TwilioClient | None = None,
    specs: dict[str, ToolSpec] | None = None,
    audit: AuditStore | None = None,
    approval_store: ApprovalStore | None = None,
) -> ToolServices:
    """Load specs, validate rules and executors (ConfigError on any problem). The audit log
    and the approval records go to the given stores (the server's); without an audit store
    one is opened on `[storage] db_path` and closed with these services. Call at start-up,
    before serving."""
    clock = clock or SystemClock()
    if specs is None:
        specs = load_tool_specs(
            Path(settings.tools.dir).expanduser(),
            default_timeout_s=settings.tools.default_timeout_s,
        )
    gatekeeper = Gatekeeper.build(
        settings.policy.rules, owner_numbers=settings.identity.owner_numbers, tools=specs
    )
    approvals = ApprovalService(
        bus, clock, timeout_s=settings.policy.approval_timeout_s, store=approval_store
    )
    owns_audit = audit is None
    if audit is None:
        audit = SqliteAuditStore.open_now(settings.storage.db_path)
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
    line = unavailable_line(dispatcher.unavailable, settings.source)
    if line is not None:
        log.info("%s", line)
    return ToolServices(
        dispatcher, approvals, bus, audit, gatekeeper, specs, clock, registry, owns_audit
    )


def unavailable_line(unavailable: Mapping[str, str], source: str) -> str | None:
    """One line naming every tool that is not offered and the fix for each (tools with the
    same fix share it), or None when every tool is available."""
    if not unavailable:
        return None
    by_fix: dict[str, list[str]] = {}
    for name, fix in unavailable.items():
        by_fix.setdefault(fix, []).append(name)
    parts = [f"{', '.join(names)} ({fix})" for fix, names in by_fix.items()]
    return f"tools not offered to the model: {'; '.join(parts)} (config: {source})"
