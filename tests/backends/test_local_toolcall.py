"""Recognising tool calls a small model writes as JSON text, and cutting text into sentences."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from foreman.backends.local_text import SentenceSplitter, speakable
from foreman.backends.local_toolcall import (
    AnswerSorter,
    ParsedToolCall,
    fit_arguments,
    parse_tool_calls,
    reply_kind,
)
from foreman.chat.llm import Completion, ToolCall

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
arguments = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
wrappers = st.sampled_from(
    ["{}", "  {}\n", "```json\n{}\n```", "```\n{}\n```", "<tool_call>\n{}\n</tool_call>"]
)


@given(names, arguments, wrappers, st.booleans())
def test_a_bare_json_call_parses_back_exactly(
    name: str, args: dict[str, Any], wrapper: str, as_string: bool
) -> None:
    payload = json.dumps(args) if as_string else args
    text = wrapper.replace("{}", json.dumps({"name": name, "arguments": payload}), 1)
    assert parse_tool_calls(text) == [ParsedToolCall(name, args)]
    assert reply_kind(text[:1] or " ") in ("call", None)


@given(st.lists(st.tuples(names, arguments), min_size=1, max_size=3))
def test_several_calls_in_a_row_or_in_a_list(calls: list[tuple[str, dict[str, Any]]]) -> None:
    objects = [{"name": n, "arguments": a} for n, a in calls]
    expected = [ParsedToolCall(n, a) for n, a in calls]
    assert parse_tool_calls("\n".join(json.dumps(o) for o in objects)) == expected
    assert parse_tool_calls(json.dumps(objects)) == expected


@given(st.text(max_size=200))
def test_any_text_is_safe_and_prose_is_never_a_call(text: str) -> None:
    calls = parse_tool_calls(text)  # never raises
    head = text.lstrip()
    if head and head[0] not in "{[`<":
        assert calls == []
        assert reply_kind(text) == "speech"


def test_shapes_that_are_not_calls() -> None:
    assert parse_tool_calls('Sure! {"name": "get_time", "arguments": {}}') == []
    assert parse_tool_calls('{"name": "get_time", "arguments": {}} and then some') == []
    assert parse_tool_calls('{"answer": 42}') == []
    assert parse_tool_calls('{"name": "not a name!", "arguments": {}}') == []
    assert parse_tool_calls('{"name": "x", "arguments": [1, 2]}') == []
    assert parse_tool_calls('{"name": "x", "arguments": {}, "extra": 1}') == []
    assert parse_tool_calls("[]") == []


def test_the_forms_small_models_write() -> None:
    # Seen from Qwen2.5-Coder-0.5B through llama.cpp: a fenced call, the OpenAI shape,
    # "parameters" for "arguments", and a call one brace short.
    fenced = (
        '```json\n{\n  "name": "get_time",\n  "arguments": {\n    "timezone": "UTC"\n  }\n}\n```'
    )
    assert parse_tool_calls(fenced) == [ParsedToolCall("get_time", {"timezone": "UTC"})]
    openai_shape = '{"type": "function", "function": {"name": "f", "arguments": "{\\"a\\": 1}"}}'
    assert parse_tool_calls(openai_shape) == [ParsedToolCall("f", {"a": 1})]
    parameters = '{"name": "f", "parameters": {"a": 1}}'
    assert parse_tool_calls(parameters) == [ParsedToolCall("f", {"a": 1})]
    short = '{"name": "send_sms", "arguments": {"to": "+15551234567", "body": "hi"}'
    assert parse_tool_calls(short) == [
        ParsedToolCall("send_sms", {"to": "+15551234567", "body": "hi"})
    ]


def test_reply_kind_waits_until_it_can_tell() -> None:
    assert reply_kind("") is None and reply_kind("   ") is None
    assert reply_kind("<tool") is None and reply_kind("`") is None
    assert reply_kind("{") == "call" and reply_kind("```json") == "call"
    assert reply_kind("<tool_call>") == "call"
    assert reply_kind("It is") == "speech" and reply_kind("<b>") == "speech"


def test_arguments_are_fitted_to_the_schema() -> None:
    schema = {"type": "object", "properties": {"timezone": {"type": "string"}}}
    echoed = {"type": "object", "properties": {}, "timezone": "UTC"}
    assert fit_arguments(echoed, schema) == {"timezone": "UTC"}
    assert fit_arguments({"type": "object"}, {"type": "object"}) == {}
    assert fit_arguments({"a": 1}, {"type": "object", "additionalProperties": True}) == {"a": 1}
    assert fit_arguments({"a": 1}, None) == {"a": 1}


@given(st.lists(st.text(max_size=15), max_size=12))
def test_sentences_cover_the_text_in_order(deltas: list[str]) -> None:
    splitter = SentenceSplitter()
    pieces = [p for d in deltas for p in splitter.feed(d)] + splitter.flush()

    def worded(text: str) -> list[str]:
        return [w for w in text.split() if any(c.isalnum() for c in w)]

    # Every word comes out once, in order, whatever the deltas' boundaries.
    assert worded(" ".join(pieces)) == worded(speakable("".join(deltas)))


def test_sentences_come_as_soon_as_they_end() -> None:
    splitter = SentenceSplitter(first_clause_chars=20)
    assert splitter.feed("Well, the weather in Paris today, ") == [
        "Well, the weather in Paris today,"
    ]
    assert splitter.feed("is sunny") == []  # a clause ends a first piece only
    assert splitter.feed(", mostly. And") == ["is sunny, mostly."]
    assert splitter.feed(" **warm**!\n- no") == ["And warm !"]
    assert splitter.flush() == ["- no"]


def _sorter() -> AnswerSorter:
    ids = iter(f"call{n}" for n in range(1, 10))
    schema = {"type": "object", "properties": {"timezone": {"type": "string"}}}
    return AnswerSorter({"get_time": schema}, lambda: next(ids))


def _sort(deltas: list[str], completion: Completion | None = None) -> tuple[str, Any, str]:
    sorter = _sorter()
    said = "".join(sorter.feed(d) for d in deltas)
    calls, rest = sorter.finish(completion)
    return said, calls, rest


def test_an_answer_in_words_is_said_as_it_streams() -> None:
    sorter = _sorter()
    assert sorter.feed("It is") == "It is"
    assert sorter.feed(" noon.") == " noon."
    assert sorter.finish(Completion("It is noon.")) == ([], "")


def test_a_call_written_as_text_is_held_then_becomes_a_call_with_fitted_arguments() -> None:
    said, calls, rest = _sort(['{"name": "get_time", ', '"arguments": {"type": "object"}}'])
    assert said == "" and rest == ""
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [("call1", "get_time", "{}")]


def test_held_text_that_was_no_call_is_said_at_the_end() -> None:
    said, calls, rest = _sort(["{braces} are ", "fine"])
    assert (said, calls, rest) == ("", [], "{braces} are fine")


def test_native_tool_calls_win_over_text() -> None:
    native = Completion("", (ToolCall("abc", "get_time", '{"timezone": "UTC"}'),))
    said, calls, rest = _sort(["{"], native)
    assert [(c.call_id, c.arguments) for c in calls] == [("abc", '{"timezone": "UTC"}')]
    assert said == rest == ""
