"""The executor interface and the registry that binds a spec's `executor` string to code.

An executor is `async (arguments, invocation) -> result`. The result is anything JSON can
encode, or a `ToolResult` when the executor needs to say "do not ask for a response" (end_call).
Raise `ToolError` with a message the model may read; any other exception is reported to the
model as a failure with its type and message (executors never put secrets in messages).

An executor that needs a service declares it (`Needs`: keys of its own config section that
must be set, modules an optional extra installs). The check runs once, at start-up, against
that section: a tool whose executor lacks something is not offered to the model, rather than
offered, approved by the owner, and only then failing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from foreman import DISTRIBUTION
from foreman.clock import Clock
from foreman.config import ENV_OVERRIDES
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
class ExtraModule:
    """A module an optional extra installs (`pip install 'foreman-voice[extra]'`)."""

    module: str  # the import name
    extra: str
    when: str = ""  # a key of the section: the module is needed only when that key is set


@dataclass(frozen=True)
class Needs:
    """What an executor needs besides its code, in terms of its own config section."""

    section: str = ""  # the section's name in foreman.toml, for the message
    keys: tuple[str, ...] = ()  # must be set (non-empty) in that section
    modules: tuple[ExtraModule, ...] = ()

    def missing(self, config: Any) -> str | None:
        """Why the executor cannot run with `config`, as the fix in one line; None if it can."""
        unset = [key for key in self.keys if not _is_set(getattr(config, key, None))]
        if unset:
            return f"set [{self.section}] {', '.join(self._with_variable(k) for k in unset)}"
        for need in self.modules:
            if need.when and not _is_set(getattr(config, need.when, None)):
                continue
            if importlib.util.find_spec(need.module) is None:
                because = f"; [{self.section}] {need.when} is set" if need.when else ""
                return (
                    f"install the {need.extra} extra: pip install '{DISTRIBUTION}[{need.extra}]' "
                    f"({need.module} is not installed{because})"
                )
        return None

    def _with_variable(self, key: str) -> str:
        for variable, where in ENV_OVERRIDES.items():
            if where == (self.section, key):
                return f"{key} (or {variable})"
        return key


def _is_set(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


@dataclass(frozen=True)
class BoundExecutor:
    """An executor with the config section it is given on every call, and what it needs."""

    run: Executor
    config: Any = None
    needs: Needs = Needs()

    def unavailable(self) -> str | None:
        """Why this executor cannot run as configured (the fix, one line), or None."""
        return self.needs.missing(self.config)


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

    def register(
        self, name: str, executor: Executor, config: Any = None, needs: Needs | None = None
    ) -> None:
        """Bind `name` to `executor`, which receives `config` as `Invocation.config` and is
        offered to the model only when `config` has what `needs` lists."""
        self._table[name] = BoundExecutor(executor, config, needs or Needs())

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
