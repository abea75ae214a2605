"""tools.d loading: every bad file stops start-up with an error naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from foreman.bus import EventBus
from foreman.exceptions import ConfigError, ToolArgumentsInvalid
from foreman.tools.services import build_tool_services
from foreman.tools.spec import load_tool_specs

from .conftest import TOOLS_DIR, make_settings

GOOD: dict[str, Any] = {
    "name": "lookup",
    "description": "Look something up",
    "risk": "low",
    "executor": "get_time",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_shipped_specs_load_and_convert() -> None:
    specs = load_tool_specs(TOOLS_DIR)
    assert {
        "end_call",
        "get_time",
        "send_sms",
        "place_call",
        "send_email",
        "calendar_list",
        "calendar_create",
    } <= set(specs)
    assert specs["send_sms"].risk == "high" and specs["get_time"].risk == "low"
    rt = specs["send_sms"].to_realtime()
    assert rt["type"] == "function" and rt["parameters"]["required"] == ["to", "body"]


def test_one_or_many_per_file_and_defaults(tmp_path: Path) -> None:
    write(tmp_path, "a.json", GOOD)
    write(tmp_path, "b.json", [dict(GOOD, name="two", timeout_s=3), dict(GOOD, name="three")])
    write(tmp_path, "ignored.txt", "not json")
    specs = load_tool_specs(tmp_path, default_timeout_s=7)
    assert sorted(specs) == ["lookup", "three", "two"]
    assert (specs["lookup"].timeout_s, specs["two"].timeout_s) == (7.0, 3.0)
    assert load_tool_specs(tmp_path / "missing") == {}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("{oops", "not valid JSON"),
        ({k: v for k, v in GOOD.items() if k != "risk"}, "missing field 'risk'"),
        (dict(GOOD, risk="medium"), "'risk' must be 'low' or 'high'"),
        (dict(GOOD, name="has space"), "'name' must match"),
        (
            dict(GOOD, parameters={"type": "object", "properties": {"q": {"type": "strnig"}}}),
            "not a valid JSON Schema",
        ),
        (dict(GOOD, parameters={"type": "string"}), '"type": "object"'),
        (dict(GOOD, timeout_s=0), "'timeout_s' must be a positive number"),
        (dict(GOOD, colour="red"), "unknown field 'colour'"),
        ([GOOD, 3], "bad.json[1]: a tool must be a JSON object"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, data: Any, fragment: str) -> None:
    path = write(tmp_path, "bad.json", data)
    with pytest.raises(ConfigError) as err:
        load_tool_specs(tmp_path)
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, "a.json", GOOD)
    write(tmp_path, "b.json", GOOD)
    with pytest.raises(
        ConfigError, match=r"b\.json: duplicate tool name 'lookup' \(also in .*a\.json"
    ):
        load_tool_specs(tmp_path)


def test_unknown_executor_and_bad_rule_stop_start_up(tmp_path: Path) -> None:
    tools = tmp_path / "tools.d"
    tools.mkdir()
    write(tools, "x.json", dict(GOOD, executor="teleport"))
    settings = make_settings(tmp_path)
    settings = settings.replace(tools=settings.tools.__class__(dir=str(tools)))
    with pytest.raises(
        ConfigError, match=r"x\.json: tool 'lookup' has unknown executor 'teleport'"
    ):
        build_tool_services(settings, EventBus())
    write(tools, "x.json", dict(GOOD, executor="http", options={"url": "ftp://x"}))
    with pytest.raises(ConfigError, match=r"x\.json: tool 'lookup': options.url"):
        build_tool_services(settings, EventBus())
    write(tools, "x.json", dict(GOOD, executor="python:no_such_module_xyz:f"))
    with pytest.raises(ConfigError, match=r"x\.json: tool 'lookup': cannot import"):
        build_tool_services(settings, EventBus())
    write(tools, "x.json", GOOD)
    bad_rule = make_settings(tmp_path, rules=[{"tool": "lookup", "action": "alow"}])
    with pytest.raises(ConfigError, match=r"policy.rules\[0\].action"):
        build_tool_services(bad_rule.replace(tools=settings.tools), EventBus())


def test_argument_validation_messages() -> None:
    spec = load_tool_specs(TOOLS_DIR)["send_email"]
    spec.validate({"to": ["a@example.com"], "subject": "s", "body": "b"})
    with pytest.raises(ToolArgumentsInvalid, match="to/0: 'not-an-address' is not a 'email'"):
        spec.validate({"to": ["not-an-address"], "subject": "s", "body": "b"})
    with pytest.raises(ToolArgumentsInvalid, match="Additional properties"):
        spec.validate({"to": ["a@b.c"], "subject": "s", "body": "b", "bcc": "x"})
