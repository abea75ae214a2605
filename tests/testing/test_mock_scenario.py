"""Scenario matching and the JSON/TOML scenario files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foreman.testing.mock_realtime import Call, Match, Reply, Rule, Say, Scenario, Text, Turn

TOML = """
[defaults]
chunk_ms = 40
pace = "burst"

[[rules]]
match = { text = "weather" }
steps = [
  { say = "Let me check the weather." },
  { call = "get_weather", arguments = { city = "Paris" } },
]

[[rules]]
match = { after_tool = "get_weather" }
steps = [{ say = "It is sunny in Paris." }]
pace = 1.5

[[rules]]
match = { audio_turn = 1 }
steps = [{ text = "First audio turn." }]
times = 1

[[rules]]
steps = [{ say = "Default reply." }]
"""


def test_toml_file_loads_rules_in_order(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(TOML)
    sc = Scenario.from_file(path)
    assert len(sc.rules) == 4
    first = sc.rules[0]
    assert first.match == Match(text="weather")
    assert first.reply.steps == (
        Say("Let me check the weather."),
        Call("get_weather", '{"city": "Paris"}'),
    )
    assert first.reply.chunk_ms == 40 and first.reply.pace == "burst"
    assert sc.rules[1].reply.pace == 1.5 and sc.rules[1].reply.chunk_ms == 40
    assert sc.rules[2].times == 1 and sc.rules[2].reply.steps == (Text("First audio turn."),)
    assert sc.rules[3].match == Match.any()


def test_json_file_is_equivalent(tmp_path: Path) -> None:
    data = {
        "rules": [
            {
                "match": {"text": "sms"},
                "steps": [{"call": "send_sms", "arguments": '{"to": "+1"}'}],
            },
            {"steps": [{"text": "fallback"}]},
        ]
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(data))
    sc = Scenario.from_file(path)
    assert sc.rules[0].reply.steps == (Call("send_sms", '{"to": "+1"}'),)
    hits: dict[int, int] = {}
    assert sc.choose(Turn("text", text="Send an SMS please"), hits).steps[0] == Call(
        "send_sms", '{"to": "+1"}'
    )
    assert sc.choose(Turn("audio", audio_turn=1), hits).steps == (Text("fallback"),)


def test_matching_rules_times_and_default() -> None:
    sc = Scenario(
        [
            Rule(Match.audio(1), Reply.say("one"), times=1),
            Rule(Match.tool("get_time"), Reply.say("It is noon.")),
            Rule(Match(instructions="greet"), Reply.say("Welcome!")),
        ]
    )
    hits: dict[int, int] = {}
    assert sc.choose(Turn("audio", audio_turn=1), hits).steps == (Say("one"),)
    # times=1: the same turn again falls through to the built-in reply
    assert sc.choose(Turn("audio", audio_turn=1), hits).steps == (
        Say("I heard you. This is the Foreman mock server."),
    )
    assert sc.choose(Turn("tool_output", tool_name="get_time"), hits).steps == (Say("It is noon."),)
    assert sc.choose(Turn("tool_output", tool_name="other"), hits).steps == (Say("Done."),)
    assert sc.choose(Turn("none", instructions="Greet the caller"), hits).steps == (
        Say("Welcome!"),
    )
    assert sc.choose(Turn("text", text="hi"), hits).steps == (Say("You said: hi"),)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[rules]]\nsteps = []\n", r"rules\[0\]: 'steps' must be a non-empty list"),
        (
            "[[rules]]\nmatch = { words = 'x' }\nsteps = [{ say = 'a' }]\n",
            r"rules\[0\]\.match: unknown key\(s\) words",
        ),
        ("[[rules]]\nsteps = [{ sing = 'a' }]\n", r"rules\[0\]\.steps\[0\]: unknown key\(s\) sing"),
        ("[[rules]]\nsteps = [{ say = 'a', text = 'b' }]\n", "exactly one of say, text, call"),
        ("[[rules]]\npace = -1\nsteps = [{ say = 'a' }]\n", "pace must be"),
        ("[[rules]]\ntimes = 0\nsteps = [{ say = 'a' }]\n", r"rules\[0\]\.times"),
        ("rules = 3\n", "'rules' must be a list"),
        ("[rulez]\n", "unknown top-level key"),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_the_place(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as exc:
        Scenario.from_file(path)
    assert str(path) in str(exc.value)


def test_reply_options_are_checked() -> None:
    with pytest.raises(ValueError):
        Reply.say("x", chunk_ms=0)
    with pytest.raises(ValueError):
        Reply.say("x", pace=0)
    reply = Reply.say("a", pace=2).then(Call.of("t", {"k": 1}))
    assert reply.pace == 2.0 and reply.steps[1] == Call("t", '{"k": 1}')


def test_the_documented_example_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "mock-realtime.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "doc.toml"
    path.write_text(example)
    sc = Scenario.from_file(path)
    assert sc.transcripts == {1: "What is the weather in Paris?"}
    assert [r.match for r in sc.rules] == [
        Match(text="weather"),
        Match(after_tool="get_weather"),
        Match(audio_turn=2),
        Match(),
    ]
    assert sc.choose(Turn("audio", text="What is the weather in Paris?", audio_turn=1), {}).steps[
        0
    ] == Say("Let me check the weather.")


def test_rule_shorthands() -> None:
    assert Rule("weather", Reply.say("x")).match == Match(text="weather")
    assert Rule(None, Reply.say("x")).match == Match()  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Rule(3, Reply.say("x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Rule(Match(), Reply.say("x"), times=0)
    assert Reply.function_call("t", '{"a": 1}').steps == (Call("t", '{"a": 1}'),)
