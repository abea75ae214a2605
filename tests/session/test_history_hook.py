"""A session hands its history hook every turn directly: typed text, whole utterances (the
assistant's with where the caller stopped hearing it and how long its audio was), tool
calls and their one output, and its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from call_harness import Call, EndCallDispatcher, speech_ulaw, until

DELTA = 1600  # 200 ms of µ-law


class RecordingHistory:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def typed(self, text: str) -> None:
        self.log.append(("typed", text))

    def utterance(self, role: str, text: str, heard_ms: int | None, audio_ms: int | None) -> None:
        self.log.append(("utterance", role, text, heard_ms, audio_ms))

    def tool_call(self, call_id: str, name: str, arguments: str) -> None:
        self.log.append(("tool_call", call_id, name, arguments))

    def tool_result(self, call_id: str, output: str) -> None:
        self.log.append(("tool_result", call_id, output))

    def ended(self, reason: str) -> None:
        self.log.append(("ended", reason))


async def test_a_cut_utterance_carries_the_heard_position_and_its_whole_audio() -> None:
    history = RecordingHistory()
    async with Call(history=history) as call:
        audio = speech_ulaw()[: 4 * DELTA]
        call.backend.reply("resp_1")
        for i in range(3):
            call.backend.audio("item_A", audio[i * DELTA : (i + 1) * DELTA], reply="resp_1")
        await call.tw.wait_until(lambda: len(call.tw.marks) == 3)
        assert call.tw.play(200) == 1
        await until(lambda: call.endpoint.stats.marks_played == 1)
        call.backend.speech_started()
        await call.backend.wait_until(lambda: call.backend.heard)
        # Audio still arriving after the cut is dropped, but it was part of the utterance.
        call.backend.audio("item_A", audio[3 * DELTA :], reply="resp_1")
        call.backend.transcript("assistant", "one two three four", reply="resp_1")
        call.backend.transcript("user", "stop please")
        await call.sync()
        assert history.log == [
            ("utterance", "assistant", "one two three four", 200, 800),
            ("utterance", "user", "stop please", None, None),
        ]
    assert history.log[-1] == ("ended", "caller hung up")


async def test_an_utterance_heard_to_the_end_has_no_position() -> None:
    history = RecordingHistory()
    async with Call(history=history) as call:
        call.backend.reply("resp_1")
        call.backend.audio("item_A", speech_ulaw()[:DELTA], reply="resp_1")
        call.backend.transcript("assistant", "Hello.", reply="resp_1")
        await call.sync()
    assert history.log[0] == ("utterance", "assistant", "Hello.", None, None)


async def test_tool_calls_their_output_and_typed_turns_reach_the_hook() -> None:
    history = RecordingHistory()
    async with Call(history=history, dispatcher=EndCallDispatcher()) as call:
        reading = asyncio.create_task(_read(call.session.say("what now?")))
        await call.backend.wait_until(lambda: call.backend.user_texts)
        call.backend.tool_call("end_call", call_id="c9")
        await until(lambda: any(entry[0] == "tool_result" for entry in history.log))
        reading.cancel()
    assert history.log[:3] == [
        ("typed", "what now?"),
        ("tool_call", "c9", "end_call", "{}"),
        ("tool_result", "c9", '{"ok": true}'),
    ]
    assert history.log[-1][0] == "ended"


async def _read(pieces: AsyncIterator[Any]) -> None:
    async for _ in pieces:
        pass
