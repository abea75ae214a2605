"""CallSession through whole calls: marks, barge-in and its clear echoes, late audio, clamping,
close without stop, garbage in, input gaps and the goodbye hang-up."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from call_harness import CALL_SID, STREAM_SID, Call, EndCallDispatcher, FakeRest, speech_ulaw, until

from foreman.clock import ManualClock
from foreman.exceptions import ConversationEnded
from foreman.testing.fake_backend import Heard

DELTA = 1600  # 200 ms of µ-law


def three_deltas(call: Call, item: str = "item_A", resp: str = "resp_1") -> bytes:
    audio = speech_ulaw()[: 3 * DELTA]
    call.backend.reply(resp)
    for i in range(3):
        call.backend.audio(item, audio[i * DELTA : (i + 1) * DELTA], reply=resp)
    return audio


async def test_mark_bookkeeping() -> None:
    async with Call() as call:
        audio = three_deltas(call)
        await call.tw.wait_until(lambda: len(call.tw.marks) == 3)
        assert call.tw.kinds == ["media", "mark"] * 3
        names = call.tw.marks
        assert all(names) and len(set(names)) == 3
        assert all(m["streamSid"] == STREAM_SID for m in call.tw.sent)
        assert call.tw.media_payload == audio
        assert all(
            len(base64.b64decode(m["media"]["payload"])) % 160 == 0 for m in call.tw.events("media")
        )


async def test_barge_in_exact_heard_ms_clear_echoes_and_late_audio() -> None:
    async with Call() as call:
        audio = three_deltas(call)
        await call.tw.wait_until(lambda: len(call.tw.marks) == 3)
        # Twilio plays 200 ms and echoes the first mark only; then the caller talks.
        assert call.tw.play(200) == 1
        await until(lambda: call.endpoint.stats.marks_played == 1)
        call.backend.speech_started(at_ms=1234)
        await call.backend.wait_until(lambda: call.backend.heard)
        assert call.tw.clears == 1
        assert call.tw.kinds[-1] == "clear"
        assert call.backend.heard == [Heard("item_A", 200)]
        # The clear made Twilio echo marks 2 and 3: dropped, not played, no new truncate.
        await until(lambda: call.endpoint.stats.marks_dropped == 2)
        assert call.endpoint.stats.marks_played == 1
        # A late delta of the interrupted item is not sent.
        sent_before = len(call.tw.sent)
        call.backend.audio("item_A", audio[:DELTA], reply="resp_1")
        await call.sync()
        assert call.session.stats.late_audio_dropped == 1
        assert len(call.tw.sent) == sent_before
        assert len(call.backend.heard) == 1


async def test_interrupt_after_playback_finished() -> None:
    async with Call() as call:
        three_deltas(call)
        call.backend.segment_done("item_A")
        call.backend.reply_done("resp_1")
        await call.tw.wait_until(lambda: len(call.tw.marks) == 3)
        assert call.tw.play_all() == 3
        await until(lambda: call.endpoint.stats.marks_played == 3)
        call.backend.speech_started()
        await call.sync()
        assert call.backend.heard == []
        assert call.tw.clears == 0
        assert not call.endpoint._playout._sent  # played items are forgotten (bounded state)


async def test_interrupt_with_nothing_played() -> None:
    async with Call() as call:
        call.backend.reply("resp_1")
        call.backend.speech_started()
        await call.sync()
        assert call.backend.heard == []
        assert call.tw.clears == 0


async def test_clamp_to_audio_sent_not_wall_clock() -> None:
    clock = ManualClock()
    async with Call(max_lead_ms=400, max_chunk_ms=100, clock=clock) as call:
        audio = speech_ulaw()[:8000]  # 1 s of speech; only 400 ms may be sent ahead
        call.backend.reply("resp_1")
        call.backend.audio("item_A", audio, reply="resp_1")
        await call.tw.wait_until(lambda: len(call.tw.marks) == 4)
        assert len(call.tw.media_payload) == 3200  # the lead bound holds while time stands
        # 900 ms of wall clock go by, but Twilio only ever had 400 ms to play.
        call.tw.play(900)
        await until(lambda: call.endpoint.stats.marks_played == 4)
        call.backend.speech_started()
        await call.backend.wait_until(lambda: call.backend.heard)
        (intr,) = call.backend.heard
        assert intr.segment == "item_A" and intr.heard_ms == 400


async def test_second_response_after_interrupt_is_forwarded_and_counted() -> None:
    async with Call() as call:
        three_deltas(call)
        await call.tw.wait_until(lambda: len(call.tw.marks) == 3)
        call.tw.play(200)
        await until(lambda: call.endpoint.stats.marks_played == 1)
        call.backend.speech_started()
        await call.backend.wait_until(lambda: call.backend.heard)
        call.backend.reply_done("resp_1", status="cancelled")
        media_before = len(call.tw.events("media"))
        b = speech_ulaw("Sure, let me check that for you.")[: 2 * DELTA]
        call.backend.reply("resp_2")
        call.backend.audio("item_B", b[:DELTA], reply="resp_2")
        call.backend.audio("item_B", b[DELTA:], reply="resp_2")
        await call.tw.wait_until(lambda: len(call.tw.events("media")) == media_before + 2)
        assert call.tw.media_payload.endswith(b)
        played_before = call.endpoint.stats.marks_played
        call.tw.play(200)
        await until(lambda: call.endpoint.stats.marks_played == played_before + 1)
        # A barge-in on item_B truncates item_B at what its own (new-generation) marks confirm.
        call.backend.speech_started()
        await call.backend.wait_until(lambda: len(call.backend.heard) == 2)
        assert call.backend.heard[1] == Heard("item_B", 200)
        assert call.tw.clears == 2


async def test_close_without_stop_cleans_up_like_stop() -> None:
    disp = EndCallDispatcher()
    call = Call(dispatcher=disp)
    async with call:
        three_deltas(call)
        await call.tw.wait_until(lambda: len(call.tw.marks) == 3)
        call.tw.feed(None)  # socket gone, no `stop`
        reason = await call.result()
    assert reason == "caller hung up (socket closed)"
    assert call.backend.closed
    assert disp.cancelled == [f"call-{CALL_SID}"]
    assert call.ended == [reason]
    assert call.endpoint._playout.out.queued_bytes == 0
    assert not call.endpoint._playout.tracker.playing


async def test_stop_ends_the_call_and_releases_everything() -> None:
    call = Call()
    async with call:
        call.tw.feed_stop()
        assert await call.result() == "caller hung up"
    assert call.backend.closed and call.tw.closed is not None


async def test_garbage_in_never_crashes_and_never_answers_binary() -> None:
    async with Call() as call:
        call.tw.feed(b"\x00\x01binary")
        call.tw.feed("this is not json")
        call.tw.feed('{"event": "unknown"}')
        call.tw.feed('{"event": "media", "media": {"payload": 5}}')
        call.tw.feed_media(speech_ulaw()[:320])
        await call.backend.wait_until(lambda: len(call.backend.pushed_b64) == 2)
        assert call.endpoint.stats.bad_messages >= 2
        assert all(isinstance(t, str) for t in call.tw.raw_sent)
        assert call.task is not None and not call.task.done()


async def test_goodbye_plays_out_then_rest_hangup() -> None:
    rest, disp = FakeRest(), EndCallDispatcher()
    call = Call(dispatcher=disp, rest=rest)
    async with call:
        bye = speech_ulaw("Goodbye, and have a nice day.")[: 2 * DELTA]
        call.backend.reply("resp_1")
        call.backend.audio("item_bye", bye, reply="resp_1")
        call.backend.segment_done("item_bye")
        call.backend.tool_call("end_call", '{"reason": "done"}', call_id="call_end")
        call.backend.reply_done("resp_1")
        await call.backend.wait_until(lambda: call.backend.tool_results)
        assert call.backend.tool_results == [("call_end", '{"ok": true}', False)]
        await call.tw.wait_until(lambda: len(call.tw.marks) == 2)
        await call.sync()
        assert rest.hangups == []  # the goodbye has not played yet
        call.tw.play(200)
        await call.sync()
        assert rest.hangups == []  # still one mark outstanding
        call.tw.play_all()
        assert await call.result() == "end_call"
    assert rest.hangups == [CALL_SID]
    assert call.tw.closed is not None
    assert call.tw.media_payload == bye


async def test_barge_in_sends_clear_before_queued_audio() -> None:
    """Barge-in goes around the queue: with 2 s queued behind the lead, `clear` goes at once
    and nothing queued follows it."""
    clock = ManualClock()
    async with Call(max_lead_ms=200, max_chunk_ms=100, clock=clock) as call:
        call.backend.reply("resp_1")
        call.backend.audio("item_A", speech_ulaw()[:16000], reply="resp_1")
        await call.tw.wait_until(lambda: len(call.tw.marks) == 2)
        call.backend.speech_started()
        await call.backend.wait_until(lambda: call.backend.heard)
        assert call.backend.heard == [Heard("item_A", 0)]
        await call.tw.wait_until(lambda: "clear" in call.tw.kinds)
        cleared_at = call.tw.kinds.index("clear")
        assert call.endpoint._playout.out.queued_bytes == 0
        clock.advance(5)  # the pacer could send again now, but the queue is gone
        await call.sync()
        assert call.tw.kinds[cleared_at:] == ["clear"]


async def test_input_gap_is_filled_with_silence() -> None:
    async with Call(passthrough_b64=False) as call:
        speech = speech_ulaw()[:480]
        for ts, i in ((1000, 0), (1020, 1), (1100, 2)):
            payload = base64.b64encode(speech[i * 160 : (i + 1) * 160]).decode()
            media = {"track": "inbound", "chunk": str(i + 1), "timestamp": str(ts)}
            media["payload"] = payload
            call.tw.feed(json.dumps({"event": "media", "streamSid": STREAM_SID, "media": media}))
        await call.backend.wait_until(lambda: len(call.backend.pushed) == 4)
        assert call.backend.pushed[2] == b"\xff" * 480  # 60 ms before the third frame
        assert call.backend.pushed[3] == speech[320:480]
        assert call.endpoint.stats.gap_filled_ms == 60


async def test_a_hang_up_while_audio_is_paced_out_is_an_ordinary_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found under load: the caller's `stop` arrived while the pacer was sending; the send
    failed and the call was logged as crashed. It is a hang-up like any other."""
    clock = ManualClock()
    async with Call(max_lead_ms=200, max_chunk_ms=100, clock=clock) as call:
        call.backend.reply("r1")
        call.backend.audio("item_A", speech_ulaw()[:16000], reply="r1")
        await call.tw.wait_until(lambda: len(call.tw.marks) == 2)  # the lead is full
        call.tw.feed_stop()
        clock.advance(1)  # the pacer may send again: the stream has stopped meanwhile
        reason = await call.result()
    assert reason == "caller hung up"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_sending_after_the_caller_stopped_ends_the_call_as_a_hang_up() -> None:
    call = Call()
    call.endpoint.play("item_A", speech_ulaw()[:1600])
    call.stream.receive(json.dumps({"event": "stop", "streamSid": STREAM_SID, "stop": {}}))
    with pytest.raises(ConversationEnded, match=r"^caller hung up$"):
        await call.endpoint.flush()  # the clear cannot go: the stream has ended
    call.endpoint.play("item_B", speech_ulaw()[:1600])
    with pytest.raises(ConversationEnded, match=r"^caller hung up$"):
        await asyncio.wait_for(call.endpoint._pace(), 5)  # nor can the next chunk
