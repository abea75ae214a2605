"""The `function_call_output` texts the model reads: JSON, `{"ok": true, "result": …}` or
`{"ok": false, "error": "…"}`. Pure helpers shared by the flow and the runner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def ok_output(result: Any) -> str:
    return json.dumps({"ok": True, "result": result}, ensure_ascii=False, default=str)


def error_output(message: str) -> str:
    return json.dumps({"ok": False, "error": message}, ensure_ascii=False)


def output_ok(output: str) -> bool:
    """Whether an output says the call succeeded (False for anything unparsable)."""
    try:
        parsed = json.loads(output)
    except (ValueError, TypeError):
        return False
    return isinstance(parsed, dict) and parsed.get("ok") is True


@dataclass
class Outcome:
    ok: bool
    output: str  # the function_call_output text
    outcome: str  # for the audit log: "ok", "error: …", "timeout", "cancelled", "not run"
    respond: bool = True
