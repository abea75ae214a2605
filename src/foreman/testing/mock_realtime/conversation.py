"""Conversation item handlers: create, retrieve, delete, truncate
(https://platform.openai.com/docs/api-reference/realtime-client-events).

Item errors use the service's codes (`item_delete_invalid_item_id`, …) and, for truncation past
the audio actually sent, its message "Audio content of Nms is already shorter than Mms".
"""

from __future__ import annotations

import base64
import copy
from typing import TYPE_CHECKING, Any

from foreman.testing.mock_realtime import errors as E
from foreman.testing.mock_realtime import ids
from foreman.testing.mock_realtime.audio_io import fmt_of
from foreman.testing.mock_realtime.errors import ClientError, only

if TYPE_CHECKING:
    from foreman.testing.mock_realtime.session import Event, MockSession


async def on_item_create(s: MockSession, event: Event) -> None:
    only(event, ("item", "previous_item_id"))
    item = event.get("item")
    if item is None:
        raise ClientError(E.missing_required("item"))
    if not isinstance(item, dict):
        raise ClientError(E.invalid_type("item", "an object", item))
    prev_id = event.get("previous_item_id")
    if prev_id is not None and prev_id != "root" and prev_id not in s.items:
        raise ClientError(
            E.error(
                "invalid_value",
                f"Error adding item: the previous item with id '{prev_id}' does not exist.",
                param="previous_item_id",
            )
        )
    if err := check_item(item):
        raise ClientError(err)
    stored = normalise_item(item)
    if stored["id"] in s.items:
        raise ClientError(
            E.error(
                "invalid_value",
                f"Item with id '{stored['id']}' already exists.",
                param="item.id",
            )
        )
    prev = s.add_item(stored, prev_id)
    await s.send(
        {
            "type": "conversation.item.added",
            "previous_item_id": prev,
            "item": s.public_item(stored),
        }
    )
    await s.send(
        {
            "type": "conversation.item.done",
            "previous_item_id": prev,
            "item": s.public_item(stored),
        }
    )


def _item(s: MockSession, event: Event, action: str, code: str) -> dict[str, Any]:
    item_id = event.get("item_id")
    if item_id is None:
        raise ClientError(E.missing_required("item_id"))
    if not isinstance(item_id, str):
        raise ClientError(E.invalid_type("item_id", "a string", item_id))
    if item_id not in s.items:
        raise ClientError(E.item_not_found(action, code, item_id))
    return s.items[item_id]


async def on_item_retrieve(s: MockSession, event: Event) -> None:
    only(event, ("item_id",))
    item = copy.deepcopy(_item(s, event, "retrieving", "item_retrieve_invalid_item_id"))
    sent = s.audio_sent.get(item["id"])
    if sent is not None:
        for part in item["content"]:
            if part.get("type") == "output_audio":
                part["audio"] = base64.b64encode(bytes(sent)).decode()
    await s.send({"type": "conversation.item.retrieved", "item": item})


async def on_item_delete(s: MockSession, event: Event) -> None:
    only(event, ("item_id",))
    item = _item(s, event, "deleting", "item_delete_invalid_item_id")
    del s.items[item["id"]]
    s.order.remove(item["id"])
    s.audio_sent.pop(item["id"], None)
    await s.send({"type": "conversation.item.deleted", "item_id": item["id"]})


async def on_item_truncate(s: MockSession, event: Event) -> None:
    only(event, ("item_id", "content_index", "audio_end_ms"))
    for key in ("item_id", "content_index", "audio_end_ms"):
        if key not in event:
            raise ClientError(E.missing_required(key))
    end = event["audio_end_ms"]
    index = event["content_index"]
    for key, value in (("audio_end_ms", end), ("content_index", index)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ClientError(E.invalid_type(key, "an integer", value))
        if value < 0:
            raise ClientError(E.out_of_range(key, value, low=0, high=None))
    item = _item(s, event, "truncating", "item_truncate_invalid_item_id")
    if item.get("type") != "message" or item.get("role") != "assistant":
        raise ClientError(
            E.error("invalid_value", "Only assistant messages can be truncated.", param="item_id")
        )
    content = item.get("content") or []
    if index >= max(1, len(content)) or (content and content[index].get("type") != "output_audio"):
        raise ClientError(
            E.error(
                "invalid_value",
                f"Content index {index} has no audio to truncate.",
                param="content_index",
            )
        )
    sent = s.audio_sent.get(item["id"], bytearray())
    fmt = s.audio_fmt.get(item["id"]) or fmt_of(s.config["audio"]["output"]["format"])
    available = int(fmt.ms_for_bytes(len(sent)))
    if end > available:
        raise ClientError(E.truncate_too_far(available, end))
    del sent[fmt.bytes_for_ms(end) :]
    if content:
        content[index]["transcript"] = ""  # the service drops the unheard transcript
    await s.send(
        {
            "type": "conversation.item.truncated",
            "item_id": item["id"],
            "content_index": index,
            "audio_end_ms": end,
        }
    )


# responses -----------------------------------------------------------------------------


_ITEM_TYPES = ("message", "function_call", "function_call_output")


def check_item(item: dict[str, Any]) -> E.ErrorBody | None:
    """The checks the service makes on a client-created item."""
    kind = item.get("type")
    if kind is None:
        return E.missing_required("item.type")
    if kind not in _ITEM_TYPES:
        return E.invalid_value("item.type", kind, _ITEM_TYPES)
    if kind == "function_call_output":
        for key in ("call_id", "output"):
            if key not in item:
                return E.missing_required(f"item.{key}")
            if not isinstance(item[key], str):
                return E.invalid_type(f"item.{key}", "a string", item[key])
        return None
    if kind == "function_call":
        for key in ("name", "arguments"):
            if key not in item:
                return E.missing_required(f"item.{key}")
        return None
    role = item.get("role")
    if role not in ("user", "system", "assistant"):
        return E.invalid_value("item.role", role, ("user", "system", "assistant"))
    content = item.get("content")
    if not isinstance(content, list):
        return E.invalid_type("item.content", "an array", content)
    allowed = {
        "user": ("input_text", "input_audio", "input_image"),
        "system": ("input_text",),
        "assistant": ("output_text",),
    }[role]
    for i, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype not in allowed:
            # observed wording: "Invalid value: 'input_text'. Value must be 'output_text'."
            msg = (
                f"Invalid value: '{ptype}'. Value must be "
                + " or ".join(f"'{a}'" for a in allowed)
                + "."
            )
            if role == "assistant" and ptype == "output_audio":
                msg = "Assistant audio messages cannot be created; use output_text."
            return E.error("invalid_value", msg, param=f"item.content[{i}].type")
    return None


def normalise_item(item: dict[str, Any]) -> dict[str, Any]:
    stored = copy.deepcopy(item)
    stored.setdefault("id", ids.item_id())
    stored.setdefault("object", "realtime.item")
    stored.setdefault("status", "completed")
    return stored
