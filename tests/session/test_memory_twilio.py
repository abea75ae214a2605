"""The in-memory Twilio socket speaks the wire of the protocol module both ways: what it
feeds, the server role parses as Twilio's messages (numbered as Twilio numbers them); what
the server role sends, it plays; what Twilio would refuse, it keeps in `rejected`."""

from __future__ import annotations

import asyncio
import json

from call_harness import speech_ulaw

from foreman.protocols.twilio import Dtmf, MarkEcho, Media, Start, Stop, TwilioStream
from foreman.testing.memory_twilio import MemoryTwilio, twilio_start
from foreman.testing.timeouts import unit

STREAM = "MZ" + "7" * 32
CALL = "CA" + "8" * 32


async def fed(tw: MemoryTwilio, n: int) -> list[str]:
    """The next `n` frames it fed (all queued already: `receive` does not wait)."""
    frames = [await asyncio.wait_for(tw.receive(), unit(1)) for _ in range(n)]
    assert all(isinstance(f, str) for f in frames)
    return frames  # type: ignore[return-value]


async def test_what_it_feeds_the_server_role_reads_as_twilios_messages() -> None:
    tw = MemoryTwilio(STREAM)
    server = TwilioStream()
    (start,) = server.receive(twilio_start(STREAM, CALL, {"caller": "+15550000111"}))
    assert isinstance(start, Start) and start.custom_parameters == {"caller": "+15550000111"}
    audio = speech_ulaw()[:320]
    tw.feed_media(audio)
    tw.feed_dtmf("7")
    tw.feed_mark("m1")
    tw.feed_stop()
    tw_fed = await fed(tw, 5)
    events = [e for frame in tw_fed for e in server.receive(frame)]
    assert [type(e) for e in events] == [Media, Media, Dtmf, MarkEcho, Stop]
    first, second = events[0], events[1]
    assert isinstance(first, Media) and isinstance(second, Media)
    assert first.payload + second.payload == audio
    assert (first.chunk, first.timestamp, second.chunk, second.timestamp) == (1, 0, 2, 20)
    # Numbered as Twilio numbers them: `start` was 1.
    assert [json.loads(f)["sequenceNumber"] for f in tw_fed] == ["2", "3", "4", "5", "6"]
    assert server.phase == "stopped"


async def test_what_the_server_role_sends_is_played_and_refusals_are_kept() -> None:
    tw = MemoryTwilio(STREAM)
    server = TwilioStream()
    server.receive(twilio_start(STREAM, CALL))
    await tw.send_text(server.media_bytes(speech_ulaw()[:800]))  # 100 ms
    await tw.send_text(server.mark("after-100ms"))
    await tw.send_text('{"event":"mark","streamSid":"MZ-someone-else","mark":{"name":"x"}}')
    assert tw.kinds == ["media", "mark", "mark"] and tw.queued_ms == 100
    (refused,) = tw.rejected
    assert "wrong streamSid" in refused.problems[0]
    assert tw.play(99) == 0 and tw.play(1) == 1  # the mark comes back once its audio played
    (echo,) = [e for f in await fed(tw, 1) for e in server.receive(f)]
    assert echo == MarkEcho("after-100ms")
