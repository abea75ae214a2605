"""Responses, function calls, cancel, truncate and item operations."""

from __future__ import annotations

import base64
import json
from typing import Any

from foreman.testing.mock_realtime import (
    Call,
    Match,
    MockRealtimeServer,
    Reply,
    Rule,
    Say,
    Scenario,
)

from .conftest import Client, types


def user_text(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
        **extra,
    }


async def text_session(client: Client) -> None:
    await client.send(
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}
    )
    await client.until("session.updated")


async def test_text_reply_streams_output_text(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    mock_realtime.scenario = Scenario([Rule(Match.user_text("hi"), Reply.say("Hi there, friend!"))])
    await text_session(client)
    await client.send(user_text("Say hi in three words"))
    await client.send({"type": "response.create"})
    events = await client.until("rate_limits.updated")
    names = types(events)
    assert [n for n in names if n != "response.output_text.delta"] == [
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "Hi there, friend!"
    assert next(e for e in events if e["type"] == "response.content_part.added")["part"] == {
        "type": "text",
        "text": "",
    }
    created = events[2]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert created["conversation_id"].startswith("conv_")
    done = events[-2]["response"]
    assert done["output"][0]["content"] == [{"type": "output_text", "text": "Hi there, friend!"}]
    u = done["usage"]
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"]


async def test_default_reply_echoes_user_text(client: Client) -> None:
    await text_session(client)
    await client.send(user_text("hello"))
    await client.send({"type": "response.create"})
    events = await client.until("response.done")
    assert (
        next(e for e in events if e["type"] == "response.output_text.done")["text"]
        == "You said: hello"
    )


async def test_function_call_flow_and_follow_up(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    mock_realtime.scenario = Scenario(
        [
            Rule(
                Match.user_text("text my wife"),
                Reply.say("Sending it now.").then(
                    Call.of("send_sms", {"to": "+15550100", "body": "Running late"})
                ),
            ),
            Rule(Match.tool("send_sms"), Reply.say("Done, the message is sent.")),
        ]
    )
    await client.send(user_text("Please text my wife that I am running late"))
    await client.send({"type": "response.create"})
    events = await client.until("rate_limits.updated")
    names = types(events)
    call_part = names[names.index("response.output_item.done") + 2 :]  # after the spoken message
    assert [n for n in call_part if n != "response.function_call_arguments.delta"] == [
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    added = [e for e in events if e["type"] == "response.output_item.added"][1]
    assert added["output_index"] == 1 and added["item"]["type"] == "function_call"
    assert added["item"]["status"] == "in_progress" and added["item"]["call_id"].startswith("call_")
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) >= 2  # split
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert "".join(d["delta"] for d in deltas) == done["arguments"]
    assert json.loads(done["arguments"]) == {"to": "+15550100", "body": "Running late"}
    assert done["name"] == "send_sms" and done["call_id"] == added["item"]["call_id"]
    final = events[-2]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]

    # the server does not answer a function_call_output by itself
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": done["call_id"],
                "output": '{"ok": true}',
            },
        }
    )
    after = await client.until("conversation.item.done")
    assert types(after) == ["conversation.item.added", "conversation.item.done"]
    await client.send({"type": "input_audio_buffer.clear"})  # a marker: nothing came in between
    assert types(await client.until("input_audio_buffer.cleared")) == ["input_audio_buffer.cleared"]
    await client.send({"type": "response.create"})
    follow = await client.until("response.done")
    transcript = next(e for e in follow if e["type"] == "response.output_audio_transcript.done")
    assert transcript["transcript"] == "Done, the message is sent."


async def test_cancel_stops_streaming_and_second_cancel_errors(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    mock_realtime.scenario = Scenario(
        [
            Rule(
                Match.any(),
                Reply.say("A long answer that is streamed in real time to the caller.", pace=1.0),
            )
        ]
    )
    await client.send({"type": "response.create"})
    await client.send({"type": "response.create", "event_id": "dup"})
    got = await client.until("error")
    busy = got[-1]["error"]
    assert busy["code"] == "conversation_already_has_active_response" and busy["event_id"] == "dup"
    created = next(e for e in got if e["type"] == "response.created")
    assert created["response"]["id"] in busy["message"]
    await client.until("response.output_audio.delta")
    await client.send({"type": "response.cancel"})
    events = await client.until("response.done")
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    audio_ms = (
        sum(
            len(base64.b64decode(e["delta"]))
            for e in client.events
            if e["type"] == "response.output_audio.delta"
        )
        / 48
    )
    assert audio_ms < 2000  # it stopped early (the full answer is ~4 s)
    await client.until("rate_limits.updated")
    await client.send({"type": "response.cancel", "event_id": "c2"})
    err = (await client.until("error"))[-1]["error"]
    assert err["code"] == "response_cancel_not_active" and err["event_id"] == "c2"
    assert err["message"] == "Cancellation failed: no active response found"


async def spoken_item(
    client: Client,
    mock_realtime: MockRealtimeServer,
    text: str = "Hello there, this is the assistant.",
) -> tuple[str, int]:
    mock_realtime.scenario = Scenario([Rule(Match.any(), Reply(Say(text)))])
    await client.send({"type": "response.create"})
    events = await client.until("rate_limits.updated")
    item_id = next(e for e in events if e["type"] == "response.output_item.added")["item"]["id"]
    sent = sum(
        len(base64.b64decode(e["delta"]))
        for e in events
        if e["type"] == "response.output_audio.delta"
    )
    return item_id, sent // 48


async def test_truncate_within_and_past_the_audio_sent(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    item_id, audio_ms = await spoken_item(client, mock_realtime)
    too_far = audio_ms + 300
    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": too_far,
            "event_id": "t1",
        }
    )
    err = (await client.until("error"))[-1]["error"]
    assert err["code"] == "invalid_value" and err["event_id"] == "t1"
    assert err["message"] == f"Audio content of {audio_ms}ms is already shorter than {too_far}ms"

    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 600,
        }
    )
    ok = (await client.until("conversation.item.truncated"))[-1]
    assert (ok["item_id"], ok["content_index"], ok["audio_end_ms"]) == (item_id, 0, 600)
    # truncated to 600 ms: the item's audio is now that long
    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 900,
        }
    )
    err = (await client.until("error"))[-1]["error"]
    assert err["message"] == "Audio content of 600ms is already shorter than 900ms"
    await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
    item = (await client.until("conversation.item.retrieved"))[-1]["item"]
    assert len(base64.b64decode(item["content"][0]["audio"])) == 600 * 48
    assert item["content"][0]["transcript"] == ""  # the unheard transcript is dropped


async def test_truncate_refuses_user_items_and_unknown_ids(client: Client) -> None:
    await client.send(user_text("hi", event_id="u"))
    user = (await client.until("conversation.item.done"))[-1]["item"]
    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": user["id"],
            "content_index": 0,
            "audio_end_ms": 0,
        }
    )
    err = (await client.until("error"))[-1]["error"]
    assert err["code"] == "invalid_value" and err["param"] == "item_id"
    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": "item_nope",
            "content_index": 0,
            "audio_end_ms": 0,
        }
    )
    err = (await client.until("error"))[-1]["error"]
    assert err["code"] == "item_truncate_invalid_item_id"


async def test_item_retrieve_delete_and_unknown_ids(client: Client) -> None:
    await client.send(user_text("first"))
    first = (await client.until("conversation.item.done"))[-1]
    await client.send(user_text("zeroth", previous_item_id="root"))
    zeroth = (await client.until("conversation.item.done"))[-1]
    assert zeroth["previous_item_id"] is None and first["previous_item_id"] is None
    await client.send({"type": "conversation.item.retrieve", "item_id": first["item"]["id"]})
    got = (await client.until("conversation.item.retrieved"))[-1]["item"]
    assert got["content"][0]["text"] == "first"
    await client.send({"type": "conversation.item.delete", "item_id": first["item"]["id"]})
    deleted = (await client.until("conversation.item.deleted"))[-1]
    assert deleted["item_id"] == first["item"]["id"]
    for kind, code in (
        ("delete", "item_delete_invalid_item_id"),
        ("retrieve", "item_retrieve_invalid_item_id"),
    ):
        await client.send(
            {"type": f"conversation.item.{kind}", "item_id": first["item"]["id"], "event_id": kind}
        )
        err = (await client.until("error"))[-1]["error"]
        assert (err["code"], err["event_id"]) == (code, kind)
        assert err["message"].endswith(f"the item with id '{first['item']['id']}' does not exist.")
    await client.send(user_text("orphan", previous_item_id="item_missing"))
    err = (await client.until("error"))[-1]["error"]
    assert err["param"] == "previous_item_id"


async def test_item_create_validation(client: Client) -> None:
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "input_text", "text": "x"}],
            },
        }
    )
    err = (await client.until("error"))[-1]["error"]
    assert err["message"] == "Invalid value: 'input_text'. Value must be 'output_text'."
    await client.send({"type": "conversation.item.create", "item": {"role": "user"}})
    err = (await client.until("error"))[-1]["error"]
    assert (err["code"], err["param"]) == ("missing_required_parameter", "item.type")
    await client.send({"type": "response.create", "response": {"modalities": ["text"]}})
    err = (await client.until("error"))[-1]["error"]
    assert (err["code"], err["param"]) == ("unknown_parameter", "response.modalities")


async def test_out_of_band_response_leaves_the_conversation_alone(
    mock_realtime: MockRealtimeServer, client: Client
) -> None:
    await text_session(client)
    await client.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"purpose": "classifier"},
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "topic?"}],
                    }
                ],
            },
        }
    )
    events = await client.until("response.done")
    assert "conversation.item.added" not in types(events)
    done = events[-1]["response"]
    assert done["conversation_id"] is None and done["metadata"] == {"purpose": "classifier"}
    session = await mock_realtime.wait_for_session()
    assert session.order == []
