"""The Chat Completions client through the real `openai` package against the loopback
stand-in: streaming, tool calls, errors as one line, and the key only where it may go."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from foreman.chat.llm import (
    ChatCompletionsClient,
    Completion,
    LLMError,
    TextDelta,
    ToolCall,
    chat_api_key,
    chat_refusal,
    to_chat_tool,
)
from foreman.config import ChatConfig
from foreman.testing.chat_standin import Answer, ChatStandIn, Rule, When
from foreman.testing.server import free_port

SMS = {
    "type": "function",
    "name": "send_sms",
    "description": "text",
    "parameters": {"type": "object"},
}
RULES = [
    Rule(When.user("text Ann"), Answer.say("On it.").and_call("send_sms", {"to": "+1555"})),
    Rule(When.tool_result("send_sms"), Answer.say("Sent!")),
]


async def test_streams_text_then_one_completion() -> None:
    async with ChatStandIn(RULES) as llm:
        client = ChatCompletionsClient(base_url=llm.base_url, model="m")
        events = [e async for e in client.stream([{"role": "user", "content": "hello you"}])]
        await client.aclose()
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        "You ",
        "said: ",
        "hello ",
        "you",
    ]
    assert events[-1] == Completion("You said: hello you", (), "stop")
    assert sum(isinstance(e, Completion) for e in events) == 1
    assert llm.requests[0]["stream"] is True and llm.requests[0]["model"] == "m"


async def test_tool_calls_are_assembled_from_streamed_pieces_and_answered() -> None:
    async with ChatStandIn(RULES) as llm:
        client = ChatCompletionsClient(base_url=llm.base_url, model="m")
        tools = [to_chat_tool(SMS)]
        ask = [{"role": "user", "content": "text Ann please"}]
        done = [e async for e in client.stream(ask, tools=tools)][-1]
        assert isinstance(done, Completion) and done.finish_reason == "tool_calls"
        (call,) = done.tool_calls
        assert call.name == "send_sms" and call.arguments == '{"to": "+1555"}'
        answer = [
            *ask,
            done.assistant_message(),
            {"role": "tool", "tool_call_id": call.call_id, "content": "ok"},
        ]
        final = await client.complete(answer, tools=tools)
        await client.aclose()
    assert final.text == "Sent!" and final.tool_calls == ()
    assert llm.requests[0]["tools"][0]["function"]["name"] == "send_sms"


async def test_a_request_the_service_would_refuse_is_one_line() -> None:
    async with ChatStandIn() as llm:
        client = ChatCompletionsClient(base_url=llm.base_url, model="m", max_retries=0)
        unanswered = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "x", "arguments": "{}"}}
            ],
        }
        with pytest.raises(LLMError, match=r"HTTP 400: .*did not have response messages: c1$"):
            await client.complete([unanswered, {"role": "user", "content": "hi"}])
        llm.fail_next(503, "overloaded\nplease retry")
        with pytest.raises(LLMError, match=r"HTTP 503: overloaded please retry$") as err:
            [e async for e in client.stream([{"role": "user", "content": "hi"}])]
        assert err.value.status == 503
        await client.aclose()


async def test_no_key_means_no_authorization_header(monkeypatch: pytest.MonkeyPatch) -> None:
    # The openai package would send these from the environment to any base URL.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leave")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-must-not-leave")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-must-not-leave")
    async with ChatStandIn() as llm:
        client = ChatCompletionsClient(base_url=llm.base_url, model="m")
        assert (await client.complete([{"role": "user", "content": "hi"}])).text == "You said: hi"
        await client.aclose()
    headers = {k.lower(): v for k, v in llm.headers[0].items()}
    assert "authorization" not in headers
    assert not any("must-not-leave" in v for v in headers.values())


async def test_the_key_goes_to_a_listed_host_and_a_refusal_never_quotes_it() -> None:
    async with ChatStandIn(api_key="sk-right") as llm:
        config = ChatConfig(
            base_url=llm.base_url, api_key=SecretStr("sk-right"), api_key_hosts=["127.0.0.1"]
        )
        client = ChatCompletionsClient.from_config(config)
        assert client.sends_key and (await client.complete([{"role": "user", "content": "a"}])).text
        await client.aclose()
        wrong = config.model_copy(update={"api_key": SecretStr("sk-wrong-and-secret")})
        client = ChatCompletionsClient.from_config(wrong)
        with pytest.raises(LLMError) as err:
            await client.complete([{"role": "user", "content": "a"}])
        await client.aclose()
    assert "HTTP 401: authentication failed" in str(err.value)
    assert "sk-wrong" not in str(err.value)
    assert llm.headers[0]["authorization"] == "Bearer sk-right"


async def test_connection_refused_is_one_line() -> None:
    client = ChatCompletionsClient(
        base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", max_retries=0
    )
    with pytest.raises(LLMError, match=r"^127\.0\.0\.1:\d+: cannot connect"):
        await client.complete([{"role": "user", "content": "a"}])
    await client.aclose()


@pytest.mark.parametrize(
    ("base_url", "hosts", "sent"),
    [
        ("https://api.openai.com/v1", ["api.openai.com"], True),
        ("http://api.openai.com/v1", ["api.openai.com"], False),  # no TLS
        ("https://llm.example.com/v1", ["api.openai.com"], False),  # not listed
        ("https://llm.example.com/v1", ["llm.example.com"], True),
        ("http://127.0.0.1:11434/v1", ["127.0.0.1"], True),  # this machine, listed
        ("http://192.168.1.5:11434/v1", ["192.168.1.5"], False),  # listed, but in the clear
    ],
)
def test_which_hosts_get_the_key(base_url: str, hosts: list[str], sent: bool) -> None:
    config = ChatConfig(base_url=base_url, api_key=SecretStr("sk-x"), api_key_hosts=hosts)
    assert (chat_api_key(config) == "sk-x") is sent


def test_refusals_say_what_to_set() -> None:
    assert chat_refusal(ChatConfig(enabled=False)) == "chat is turned off ([chat] enabled = false)"
    no_key = chat_refusal(ChatConfig())
    assert no_key is not None and "OPENAI_API_KEY" in no_key and "base_url" in no_key
    assert chat_refusal(ChatConfig(base_url="http://127.0.0.1:11434/v1")) is None  # local: no key
    assert chat_refusal(ChatConfig(api_key=SecretStr("sk-x"))) is None
    elsewhere = ChatConfig(api_key=SecretStr("sk-x"), api_key_hosts=["other.example"])
    refusal = chat_refusal(elsewhere)
    assert refusal is not None and "api_key_hosts" in refusal and "sk-x" not in refusal


def test_tool_schema_shape() -> None:
    assert to_chat_tool(SMS) == {
        "type": "function",
        "function": {"name": "send_sms", "description": "text", "parameters": {"type": "object"}},
    }
    assert ToolCall("c", "n", "{}") == ToolCall("c", "n", "{}")


def test_calls_without_ids_or_with_repeated_ids_get_distinct_ones() -> None:
    from foreman.chat.llm import _calls

    pieces = {
        0: {"id": "", "name": "a", "arguments": ["{}"]},
        1: {"id": "same", "name": "b", "arguments": ['{"x"', ": 1}"]},
        2: {"id": "same", "name": "c", "arguments": []},
        3: {"id": "skipped", "name": "", "arguments": []},
    }
    calls = _calls(pieces)
    assert [c.name for c in calls] == ["a", "b", "c"]
    assert len({c.call_id for c in calls}) == 3 and calls[1].call_id == "same"
    assert calls[1].arguments == '{"x": 1}'
