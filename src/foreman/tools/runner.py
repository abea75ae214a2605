"""Running one executor: the per-tool timeout, the "still running" note, and turning the
result or the failure into the `function_call_output` text the model reads.

Outputs are JSON: `{"ok": true, "result": …}` or `{"ok": false, "error": "…"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from foreman.exceptions import ToolError
from foreman.tools.executors.base import Executor, Invocation, ToolResult
from foreman.tools.outputs import Outcome, error_output, ok_output

__all__ = ["Outcome", "error_output", "ok_output", "run_tool"]

log = logging.getLogger(__name__)


async def run_tool(
    executor: Executor,
    arguments: dict[str, Any],
    inv: Invocation,
    *,
    still_running_after_s: float,
) -> Outcome:
    """Run with `inv.spec.timeout_s`; past `still_running_after_s` the model is told the tool
    is still running (no dead air). Cancelling the caller cancels the executor."""
    spec = inv.spec
    task = asyncio.ensure_future(executor(arguments, inv))
    try:
        still = still_running_after_s
        if 0 < still < spec.timeout_s:
            done, _ = await asyncio.wait({task}, timeout=still)
            if not done:
                await inv.session.notify_model(
                    f"The {spec.name} tool is still running. It has NOT finished yet; "
                    "tell the caller briefly that you are working on it."
                )
                done, _ = await asyncio.wait({task}, timeout=spec.timeout_s - still)
        else:
            done, _ = await asyncio.wait({task}, timeout=spec.timeout_s)
        if not done:
            msg = f"{spec.name} timed out after {spec.timeout_s:g} s; it may not have completed"
            return Outcome(False, error_output(msg), "timeout")
        exc = task.exception()
        if exc is None:
            value = task.result()
            if isinstance(value, ToolResult):
                return Outcome(True, ok_output(value.output), "ok", respond=value.respond)
            return Outcome(True, ok_output(value), "ok")
        if isinstance(exc, ToolError):
            return Outcome(False, error_output(str(exc)), f"error: {exc}")
        log.warning("tool %s failed: %s: %s", spec.name, type(exc).__name__, exc)
        msg = f"{spec.name} failed: {type(exc).__name__}: {exc}"
        return Outcome(False, error_output(msg), f"error: {type(exc).__name__}")
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
