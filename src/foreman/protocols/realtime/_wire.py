"""Field extraction for typed server events: one compiled spec per event class.

A server event class declares the fields a client needs as dataclass fields with plain type
hints (`str`, `int`, `float`, `bool`, `dict`, `list`, optionally `| None`). A field may read a
nested wire path through `metadata={"path": ("error", "code")}`. Fields without a default are
required: a frame that lacks one, or carries the wrong JSON type, is a `RemoteProtocolError`
(the peer broke the protocol). Extra wire fields are never an error; they stay in `raw`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from foreman.exceptions import RemoteProtocolError

_MISSING = object()

# JSON type checks: (python type accepted, human name). bool is excluded from int/float.
_CHECKS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    str: (lambda v: isinstance(v, str), "a string"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "a number",
    ),
    bool: (lambda v: isinstance(v, bool), "a boolean"),
    dict: (lambda v: isinstance(v, dict), "an object"),
    list: (lambda v: isinstance(v, list), "an array"),
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    path: tuple[str, ...]
    check: Callable[[Any], bool]
    kind: str
    nullable: bool
    required: bool
    is_float: bool


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(the non-None part of a hint, whether None is allowed)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:  # pragma: no cover - a programming error in an event class
            raise TypeError(f"unsupported union hint {tp!r}")
        return _base_type(args[0])[0], True
    if origin is not None:
        return origin, False
    return tp, False


def compile_spec(cls: type[Any], skip: frozenset[str]) -> tuple[FieldSpec, ...]:
    """Build the extraction spec of a dataclass, skipping the names in `skip`."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        base, nullable = _base_type(hints[f.name])
        check, kind = _CHECKS[base]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        path = tuple(f.metadata.get("path", (f.name,)))
        specs.append(FieldSpec(f.name, path, check, kind, nullable, required, base is float))
    return tuple(specs)


def extract(type_name: str, data: dict[str, Any], specs: tuple[FieldSpec, ...]) -> dict[str, Any]:
    """Read the typed fields out of one wire object; raises RemoteProtocolError."""
    kwargs: dict[str, Any] = {}
    for spec in specs:
        value: Any = data
        for key in spec.path:
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
            if value is _MISSING:
                break
        if value is _MISSING or (value is None and not spec.nullable):
            if spec.required:
                raise RemoteProtocolError(
                    f"{type_name}: missing required field '{'.'.join(spec.path)}'"
                )
            continue  # keep the dataclass default (a null where no null belongs reads as absent)
        if value is not None and not spec.check(value):
            raise RemoteProtocolError(
                f"{type_name}: field '{'.'.join(spec.path)}' must be {spec.kind}, "
                f"got {type(value).__name__}"
            )
        kwargs[spec.name] = float(value) if spec.is_float and value is not None else value
    return kwargs


def path(*keys: str, default: Any = None) -> Any:
    """A dataclass field read from a nested wire path (optional, with `default`)."""
    return dataclasses.field(default=default, metadata={"path": keys})
