"""Tool specs from `tools.d/*.json` (`[tools] dir`): one tool object or a list of them per file.

    {"name": "send_sms", "description": "...", "risk": "high", "executor": "send_sms",
     "parameters": {"type": "object", "properties": {...}, "required": [...]},
     "timeout_s": 15, "options": {}}

`name`, `description`, `parameters`, `risk` and `executor` are required; `timeout_s`
defaults to `[tools] default_timeout_s`; `options` is executor-specific (e.g. the http
executor's `url`). A bad file stops start-up with a ConfigError naming the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions

from foreman.exceptions import ConfigError, ToolArgumentsInvalid
from foreman.policy.decision import RISKS, Risk

_REQUIRED = ("name", "description", "parameters", "risk", "executor")
_OPTIONAL = ("timeout_s", "options")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what the Realtime API accepts as a name


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)
    risk: Risk
    executor: str
    timeout_s: float
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str = ""  # the file it came from, for error messages

    def to_realtime(self) -> dict[str, Any]:
        """The `session.update` `tools[]` entry (GA: type, name, description, parameters)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }

    def validate(self, arguments: Any) -> None:
        """Raise ToolArgumentsInvalid with a message the model can act on."""
        validator = jsonschema.Draft202012Validator(
            self.parameters, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            parts = []
            for err in errors[:5]:
                where = "/".join(str(p) for p in err.absolute_path) or "arguments"
                parts.append(f"{where}: {err.message}")
            raise ToolArgumentsInvalid("; ".join(parts))


def load_tool_specs(directory: Path, *, default_timeout_s: float = 10.0) -> dict[str, ToolSpec]:
    """Load every `*.json` in `directory` (sorted by name). A missing directory gives {}."""
    specs: dict[str, ToolSpec] = {}
    if not directory.is_dir():
        if directory.exists():
            raise ConfigError(f"{directory}: tools directory is not a directory")
        return specs
    for path in sorted(directory.glob("*.json")):
        for spec in _load_file(path, default_timeout_s):
            if spec.name in specs:
                raise ConfigError(
                    f"{path}: duplicate tool name {spec.name!r} (also in {specs[spec.name].source})"
                )
            specs[spec.name] = spec
    return specs


def _load_file(path: Path, default_timeout_s: float) -> list[ToolSpec]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    items = data if isinstance(data, list) else [data]
    return [
        _parse(
            item,
            f"{path}" + (f"[{i}]" if isinstance(data, list) else ""),
            str(path),
            default_timeout_s,
        )
        for i, item in enumerate(items)
    ]


def _parse(item: Any, where: str, source: str, default_timeout_s: float) -> ToolSpec:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a tool must be a JSON object")
    for key in _REQUIRED:
        if key not in item:
            raise ConfigError(f"{where}: missing field '{key}'")
    unknown = set(item) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise ConfigError(f"{where}: unknown field '{sorted(unknown)[0]}'")
    name = item["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: 'name' must match {_NAME.pattern}, got {name!r}")
    if not isinstance(item["description"], str):
        raise ConfigError(f"{where}: 'description' must be a string")
    if item["risk"] not in RISKS:
        raise ConfigError(f"{where}: 'risk' must be 'low' or 'high', got {item['risk']!r}")
    if not isinstance(item["executor"], str) or not item["executor"]:
        raise ConfigError(f"{where}: 'executor' must be a non-empty string")
    params = item["parameters"]
    if not isinstance(params, dict) or params.get("type") != "object":
        raise ConfigError(f'{where}: \'parameters\' must be a JSON Schema with "type": "object"')
    try:
        jsonschema.Draft202012Validator.check_schema(params)
    except jsonschema.exceptions.SchemaError as exc:
        raise ConfigError(
            f"{where}: 'parameters' is not a valid JSON Schema: {exc.message}"
        ) from None
    timeout = item.get("timeout_s", default_timeout_s)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}: 'timeout_s' must be a positive number")
    options = item.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: 'options' must be an object")
    return ToolSpec(
        name=name,
        description=item["description"],
        parameters=params,
        risk=item["risk"],
        executor=item["executor"],
        timeout_s=float(timeout),
        options=options,
        source=source,
    )
