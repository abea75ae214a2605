"""The audit writer: one row per tool call the model made, in the audit store and on the bus.

The row is written even when the session ends mid-call (the write is shielded from the
cancellation), and a failed write is logged, never raised: losing a row must not lose the
call's output.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any

from foreman.bus import EventBus
from foreman.clock import Clock
from foreman.events import ToolAudited
from foreman.policy.context import CallContext
from foreman.stores.interfaces import AuditStore
from foreman.stores.records import AuditRecord

log = logging.getLogger(__name__)


class AuditWriter:
    def __init__(self, store: AuditStore, bus: EventBus, clock: Clock) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock

    async def write(
        self,
        ctx: CallContext,
        *,
        tool: str,
        call_id: str,
        arguments: Any,
        decision: str,
        reason: str,
        outcome: str,
        approver: str | None = None,
        approval_id: str | None = None,
        wait_s: float | None = None,
    ) -> None:
        record = AuditRecord(
            at=self.clock.wall(),
            session_id=ctx.session_id,
            caller=ctx.caller_name or ctx.caller_id,
            role=ctx.role.value,
            channel=ctx.channel.value,
            tool=tool,
            call_id=call_id,
            arguments=arguments,
            decision=decision,
            reason=reason,
            outcome=outcome,
            approver=approver,
            approval_id=approval_id,
            wait_s=wait_s,
        )
        try:
            # shielded: a cancelled task (the call ended) still gets its row written
            await asyncio.shield(self.store.record(record))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("audit write failed")
        self.bus.publish(ToolAudited(asdict(record)))
