"""Input audio handlers: append (with server VAD), commit, clear
(https://platform.openai.com/docs/api-reference/realtime-client-events,
https://platform.openai.com/docs/guides/realtime-vad).

Offsets on the session clock count every byte appended this session;
`speech_started.audio_start_ms` includes `prefix_padding_ms` and is clamped at 0.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import TYPE_CHECKING, Any

from foreman.testing.mock_realtime import errors as E
from foreman.testing.mock_realtime import ids
from foreman.testing.mock_realtime.audio_io import TurnDetector, fmt_of, split_words
from foreman.testing.mock_realtime.errors import ClientError, only

if TYPE_CHECKING:
    from foreman.testing.mock_realtime.session import Event, MockSession

MAX_APPEND_BYTES = 15 * 1024 * 1024  # the service's limit per append


async def on_append(s: MockSession, event: Event) -> None:
    only(event, ("audio",))
    audio = event.get("audio")
    if audio is None:
        raise ClientError(E.missing_required("audio"))
    if not isinstance(audio, str):
        raise ClientError(E.invalid_type("audio", "a string", audio))
    try:
        data = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ClientError(
            E.error("invalid_value", f"Invalid 'audio': not valid base64 ({exc}).", param="audio")
        ) from exc
    if len(data) > MAX_APPEND_BYTES:
        raise ClientError(
            E.error("invalid_value", "Audio chunk exceeds the 15 MiB limit.", param="audio")
        )
    fmt = fmt_of(s.config["audio"]["input"]["format"])
    if len(data) % fmt.bytes_per_sample:
        data = data[: len(data) - len(data) % fmt.bytes_per_sample]
    if not s.buffer:
        s.buffer_start_ms = s.audio_ms
    s.buffer += data
    td = s.config["audio"]["input"]["turn_detection"]
    if td is not None and (s.detector is None or s.detector.fmt != fmt):
        s.detector = TurnDetector(td, fmt, s.audio_ms)
    s.audio_ms += fmt.ms_for_bytes(len(data))
    if td is None or s.detector is None:
        return
    for turn in s.detector.feed(data):
        if turn.kind == "start":
            await _speech_started(s, turn.ms, td)
        else:
            await _speech_stopped(s, turn.ms, td)


async def _speech_started(s: MockSession, ms: int, td: dict[str, Any]) -> None:
    padding = int(td.get("prefix_padding_ms", 300)) if td["type"] == "server_vad" else 300
    start = max(0, ms - padding)
    s.speech_item = ids.item_id()
    s.speech_start_ms = start
    s.disarm_idle_timeout()
    await s.send(
        {
            "type": "input_audio_buffer.speech_started",
            "audio_start_ms": start,
            "item_id": s.speech_item,
        }
    )
    if td.get("interrupt_response", True) and s.active is not None:
        s.active.cancel("turn_detected")


async def _speech_stopped(s: MockSession, ms: int, td: dict[str, Any]) -> None:
    item_id = s.speech_item or ids.item_id()
    s.speech_item = None
    await s.send(
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": item_id}
    )
    fmt = fmt_of(s.config["audio"]["input"]["format"])
    # keep only the turn's audio (from the padded start) in the committed item
    skip = fmt.bytes_for_ms(max(0.0, s.speech_start_ms - s.buffer_start_ms))
    del s.buffer[:skip]
    await commit(s, item_id)
    s.server.turns_committed += 1
    if s.server.turns_committed <= s.faults.ignore_turns:
        return  # fault: a model that does not answer this turn
    if td.get("create_response", True):
        if s.active is not None and s.active.cancelled and s.active.task is not None:
            # the barge-in cancel is still closing its items; the new turn answers next
            await asyncio.shield(s.active.task)
        if s.active is not None:
            await s.send_error(E.active_response(s.active.id))
        else:
            await s.start_response({})


async def commit(s: MockSession, item_id: str) -> None:
    """Turn the buffer into user audio item `item_id`: `committed`, item `added`/`done`, and
    input transcription when enabled. Does not start a response."""
    audio = bytes(s.buffer)
    s.buffer.clear()
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [
            {
                "type": "input_audio",
                "transcript": None,
                "audio": base64.b64encode(audio).decode(),
            }
        ],
    }
    prev = s.add_item(item)
    s.audio_turns[item_id] = len(s.audio_turns) + 1
    await s.send(
        {"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": item_id}
    )
    await s.send(
        {
            "type": "conversation.item.added",
            "previous_item_id": prev,
            "item": s.public_item(item),
        }
    )
    await s.send(
        {
            "type": "conversation.item.done",
            "previous_item_id": prev,
            "item": s.public_item(item),
        }
    )
    if s.config["audio"]["input"]["transcription"] is not None:
        await _transcribe(
            s, item, fmt_of(s.config["audio"]["input"]["format"]).ms_for_bytes(len(audio))
        )


async def _transcribe(s: MockSession, item: dict[str, Any], audio_ms: float) -> None:
    """Input transcription: the scenario's scripted transcript for this turn.

    The mock has no ASR; `Scenario.transcripts[n]` gives turn n's text (default
    "(audio turn n)"). It also becomes the item's `transcript` for later matching."""
    turn = s.audio_turns[item["id"]]
    text = s.server.scenario.transcripts.get(turn, f"(audio turn {turn})")
    item["content"][0]["transcript"] = text
    ref = {"item_id": item["id"], "content_index": 0}
    for piece in split_words(text, max(1, len(text.split(" ")))):
        if piece:
            await s.send(
                {"type": "conversation.item.input_audio_transcription.delta", **ref, "delta": piece}
            )
    await s.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            **ref,
            "transcript": text,
            "usage": {"type": "duration", "seconds": round(audio_ms / 1000, 3)},
        }
    )


async def on_commit(s: MockSession, event: Event) -> None:
    only(event, ())
    fmt = fmt_of(s.config["audio"]["input"]["format"])
    buffered = fmt.ms_for_bytes(len(s.buffer))
    if buffered < 100:
        raise ClientError(E.commit_empty(buffered))
    if s.detector is not None:
        s.detector = None  # a manual commit ends whatever turn VAD was tracking
    item_id = s.speech_item or ids.item_id()
    s.speech_item = None
    s.disarm_idle_timeout()
    await commit(s, item_id)


async def on_clear(s: MockSession, event: Event) -> None:
    only(event, ())
    s.buffer.clear()
    s.detector = None
    s.speech_item = None
    await s.send({"type": "input_audio_buffer.cleared"})


# conversation items --------------------------------------------------------------------
