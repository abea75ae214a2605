"""Python plugins: `python:package.module:function`, or `plugin:NAME` for an entry point in
the `foreman.tools` group (installed packages declare
`[project.entry-points."foreman.tools"] NAME = "pkg.mod:function"`).

The function takes `(arguments: dict, invocation)`; it may be `async def` or a plain
function (then it runs in a worker thread so it cannot block the event loop).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import inspect
from typing import Any

from foreman.exceptions import ConfigError
from foreman.tools.executors.base import Executor, Invocation
from foreman.tools.spec import ToolSpec

ENTRY_POINT_GROUP = "foreman.tools"


def _wrap(fn: Any) -> Executor:
    if inspect.iscoroutinefunction(fn):
        return fn  # type: ignore[no-any-return]

    async def run_in_thread(args: dict[str, Any], inv: Invocation) -> Any:
        return await asyncio.to_thread(fn, args, inv)

    return run_in_thread


def resolve_python(target: str, spec: ToolSpec) -> Executor:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            f"executor 'python:{target}' must look like python:package.module:function"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"{module_name}:{attr} is not a function")
    return _wrap(fn)


def resolve_entry_point(name: str, spec: ToolSpec) -> Executor:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        raise ConfigError(f"no entry point {name!r} in group {ENTRY_POINT_GROUP!r}")
    try:
        fn = next(iter(found)).load()
    except Exception as exc:
        raise ConfigError(f"entry point {name!r} failed to load: {exc}") from None
    if not callable(fn):
        raise ConfigError(f"entry point {name!r} is not a function")
    return _wrap(fn)
