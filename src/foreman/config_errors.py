"""One line per configuration problem, from pydantic's `ValidationError`.

pydantic's own text spans several lines and shows the offending input. A Foreman config
error is one line that names the dotted key (`'server.port'`, `[bogus]` for a section) and
never shows the value of a secret (`SecretStr`) field: for those it names only the type that
was given. Other values are echoed, cut short.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

__all__ = ["Problem", "first_problem", "unknown_key_line"]

_ECHO_LIMIT = 40  # characters of a non-secret value shown in a message

# pydantic error type -> what the value must be. Types not listed fall back to pydantic's
# one-line `msg`.
_MUST_BE = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
}


@dataclass(frozen=True)
class Problem:
    """The first problem of a `ValidationError`, ready to print."""

    loc: tuple[str | int, ...]  # where it is, e.g. ("server", "port")
    key: str  # the dotted key, e.g. "server.port"
    detail: str  # what is wrong, without the key: "must be an integer, got '80'"
    line: str  # the key and the detail in one sentence (prefix it with who is to blame)


def first_problem(exc: ValidationError, model: type[BaseModel]) -> Problem:
    """The problem to report for `exc`, raised while validating `model`.

    A misspelt key is reported before anything else: it is the likeliest cause, and the
    other errors may be its consequences. The count of further problems is appended.
    """
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc = tuple(error["loc"])
    key = dotted(loc)
    if error["type"] == "extra_forbidden":
        detail = "is not a known key"
        line = unknown_key_line(loc, model)
    else:
        detail = _detail(error, secret=_is_secret(model, loc))
        line = (
            f"[{key}] {detail}" if len(loc) == 1 and _model_at(model, loc) else f"'{key}' {detail}"
        )
    if len(errors) > 1:
        more = len(errors) - 1
        line += f" (and {more} more problem{'s' if more > 1 else ''})"
    return Problem(loc=loc, key=key, detail=detail, line=line)


def unknown_key_line(loc: tuple[str | int, ...], model: type[BaseModel]) -> str:
    """`unknown key 'realtime.modle' (valid: ...)`; at the top level, `unknown section [x]`."""
    parent = _model_at(model, loc[:-1]) or model
    if len(loc) == 1:
        sections = [name for name in parent.model_fields if _model_at(parent, (name,))]
        return f"unknown section [{loc[0]}] (valid: {', '.join(sorted(sections))})"
    return f"unknown key '{dotted(loc)}' (valid: {', '.join(sorted(parent.model_fields))})"


def dotted(loc: tuple[str | int, ...]) -> str:
    """("realtime", "output_modalities", 0) -> "realtime.output_modalities[0]"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
    return out


def _detail(error: ErrorDetails, *, secret: bool) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "missing":
        return "is required"
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error", error["msg"]))
    elif kind in _MUST_BE:
        text = _MUST_BE[kind]
    elif kind == "literal_error":
        text = f"must be {ctx['expected']}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        text = _bound(kind, ctx)
    elif kind == "string_too_short" and ctx.get("min_length") == 1:
        text = "must not be empty"
    elif kind in ("too_short", "too_long"):
        limit = ctx["min_length"] if kind == "too_short" else ctx["max_length"]
        plural = "" if limit == 1 else "s"
        text = f"must have at {'least' if kind == 'too_short' else 'most'} {limit} item{plural}"
    else:
        text = error["msg"].removeprefix("Input ")
    return f"{text}, {_got(error['input'], secret=secret)}"


def _bound(kind: str, ctx: dict[str, Any]) -> str:
    words = {
        "greater_than": ("more than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    phrase, name = words[kind]
    return f"must be {phrase} {ctx[name]}"


def _got(value: Any, *, secret: bool) -> str:
    if secret:
        return f"got {_kind(value)} (a secret: its value is not shown)"
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return f"got {text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 3] + '...'}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return names.get(type(value), f"a {type(value).__name__}")


def _is_secret(model: type[BaseModel], loc: tuple[str | int, ...]) -> bool:
    """Whether any field on the way to `loc` holds a secret (then nothing below is echoed)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return False
        annotation = current.model_fields[part].annotation
        if SecretStr in (annotation, *typing.get_args(annotation)):
            return True
        current = _as_model(annotation)
    return False


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class a table at `loc` is validated as, or None when `loc` is not a table."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        current = _as_model(current.model_fields[part].annotation)
    return current


def _as_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _as_model(arg)
            if found is not None:
                return found
    return None
