"""Tools: specs from `config/tools.d`, executors, the dispatcher and the approval service."""

from foreman.tools.approvals import ApprovalService
from foreman.tools.dispatcher import ToolDispatcher
from foreman.tools.executors.base import ExecutorRegistry, Invocation, ToolResult
from foreman.tools.services import ToolServices, build_tool_services
from foreman.tools.session import ToolSession
from foreman.tools.spec import ToolSpec, load_tool_specs

__all__ = [
    "ApprovalService",
    "ExecutorRegistry",
    "Invocation",
    "ToolDispatcher",
    "ToolResult",
    "ToolServices",
    "ToolSession",
    "ToolSpec",
    "build_tool_services",
    "load_tool_specs",
]
