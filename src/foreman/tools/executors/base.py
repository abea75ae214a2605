"""The executor interface and the registry that binds a spec's `executor` string to code.

An executor is `async (arguments, invocation) -> result`. The result is anything JSON can
encode, or a `ToolResult` when the executor needs to say "do not ask for a response" (end_call).
Raise `ToolError` with a message the model may read; any other exception is reported to the
model as a failure with its type and message (executors never put secrets in messages).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from foreman.clock import Clock
from foreman.exceptions import ConfigError
from foreman.policy.context import CallContext
from foreman.tools.session import ToolSession
from foreman.tools.spec import ToolSpec


@dataclass(frozen=True)
class Invocation:
    """Everything an executor may use besides the arguments: its own config section (and
    nothing else of the settings: no other service's secrets), the spec's options, the
    caller, and the session (for `request_end`)."""

    call_id: str
    spec: ToolSpec
    ctx: CallContext
    session: ToolSession
    clock: Clock
    config: Any = None


@dataclass(frozen=True)
class ToolResult:
    output: Any
    respond: bool = True


Executor = Callable[[dict[str, Any], Invocation], Awaitable[Any]]


@dataclass(frozen=True)
class BoundExecutor:
    """An executor with the config section it is given on every call."""

    run: Executor
    config: Any = None


# A resolver turns an executor string (after "prefix:") into code, checking the spec's
# options at start-up: "http", "python:pkg.mod:func", "plugin:NAME".
Resolver = Callable[[str, ToolSpec], Executor]


class ExecutorRegistry:
    """Executor names -> code. `resolve` is called for every spec at start-up (fail fast)."""

    def __init__(
        self,
        table: Mapping[str, Executor | BoundExecutor] | None = None,
        resolvers: Mapping[str, Resolver] | None = None,
    ) -> None:
        self._table: dict[str, BoundExecutor] = {
            name: fn if isinstance(fn, BoundExecutor) else BoundExecutor(fn)
            for name, fn in (table or {}).items()
        }
        self._resolvers: dict[str, Resolver] = dict(resolvers or {})
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` at shutdown (e.g. close an HTTP pool an executor opened)."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        for closer in self._closers:
            await closer()

    def register(self, name: str, executor: Executor, config: Any = None) -> None:
        """Bind `name` to `executor`, which receives `config` as `Invocation.config`."""
        self._table[name] = BoundExecutor(executor, config)

    def register_prefix(self, prefix: str, resolver: Resolver) -> None:
        self._resolvers[prefix] = resolver

    def names(self) -> list[str]:
        return sorted(self._table) + [f"{p}:…" for p in sorted(self._resolvers)]

    def resolve(self, spec: ToolSpec) -> BoundExecutor:
        """The executor for `spec`; raises ConfigError naming the spec's file and tool."""
        name = spec.executor
        if name in self._table:
            return self._table[name]
        prefix, _, rest = name.partition(":")
        if prefix in self._resolvers:  # "http" (checks options) or "python:mod:fn"
            try:
                return BoundExecutor(self._resolvers[prefix](rest, spec))
            except ConfigError as exc:
                if str(exc).startswith(spec.source):
                    raise
                raise ConfigError(f"{spec.source}: tool {spec.name!r}: {exc}") from None
        raise ConfigError(
            f"{spec.source}: tool {spec.name!r} has unknown executor {name!r} "
            f"(known: {', '.join(self.names())})"
        )
