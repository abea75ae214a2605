"""OutboundAudio: whole frames, carried remainders, bounded lead, generations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foreman.audio.pacing import OutboundAudio


def drain(out: OutboundAudio, now: float) -> list[bytes]:
    chunks = []
    while (c := out.next_chunk(now)) is not None:
        chunks.append(c)
    return chunks


@given(st.lists(st.integers(1, 700), min_size=1, max_size=30))
def test_any_split_gives_whole_frames_and_the_same_bytes(sizes: list[int]) -> None:
    audio = bytes(i % 251 for i in range(sum(sizes)))
    out = OutboundAudio(max_lead_ms=10**9)
    pos = 0
    for n in sizes:
        out.push("item", 0, audio[pos : pos + n])
        pos += n
    out.finish_item("item", 0)
    chunks = drain(out, 0.0)
    payload = b"".join(c.payload for c in chunks)
    assert all(len(c.payload) % 160 == 0 and c.payload for c in chunks)
    assert payload[: len(audio)] == audio
    assert payload[len(audio) :] == b"\xff" * (len(payload) - len(audio))
    assert len(payload) - len(audio) < 160
    assert sum(c.audio_bytes for c in chunks) == len(audio)
    assert not out.has_audio


def test_remainder_waits_for_more_audio_of_the_same_item() -> None:
    out = OutboundAudio(max_lead_ms=10**6)
    out.push("a", 0, b"\x01" * 250)
    (c,) = drain(out, 0.0)
    assert len(c.payload) == 160  # the 90-byte tail is carried, not padded
    out.push("a", 0, b"\x01" * 70)
    (c,) = drain(out, 0.0)
    assert c.payload == b"\x01" * 160


def test_a_new_item_finishes_the_previous_one() -> None:
    out = OutboundAudio(max_lead_ms=10**6)
    out.push("a", 0, b"\x01" * 100)
    out.push("b", 0, b"\x02" * 160)
    a, b = drain(out, 0.0)
    assert (a.item_id, a.payload, a.audio_bytes) == ("a", b"\x01" * 100 + b"\xff" * 60, 100)
    assert (b.item_id, b.payload) == ("b", b"\x02" * 160)


def test_lead_is_bounded_and_refills_a_whole_chunk_at_a_time() -> None:
    out = OutboundAudio(max_lead_ms=400, max_chunk_frames=5)
    out.push("a", 0, b"\x01" * 8000)  # 1 s
    sent = drain(out, 100.0)
    assert sum(len(c.payload) for c in sent) == 3200  # exactly max_lead_ms
    assert out.delay(100.0) == pytest.approx(0.1)  # room for a whole 100 ms chunk first
    assert drain(out, 100.05) == []  # 50 ms of room is not enough for a chunk
    more = drain(out, 100.1)  # 100 ms played -> one 100 ms chunk may go
    assert [len(c.payload) for c in more] == [800]
    assert out.lead_ms(100.1) == 400


def test_a_short_tail_does_not_wait_for_a_whole_chunk() -> None:
    out = OutboundAudio(max_lead_ms=400, max_chunk_frames=5)
    out.push("a", 0, b"\x01" * 3360)  # 420 ms: 400 go now, one 20 ms frame is left
    drain(out, 0.0)
    assert out.delay(0.0) == pytest.approx(0.02)


def test_chunks_never_exceed_the_chunk_size() -> None:
    out = OutboundAudio(max_lead_ms=10**6, max_chunk_frames=3)
    out.push("a", 0, b"\x01" * 1600)
    assert [len(c.payload) for c in drain(out, 0.0)] == [480, 480, 480, 160]


def test_drop_forgets_everything_and_bumps_generation() -> None:
    out = OutboundAudio(max_lead_ms=200)
    out.push("a", 0, b"\x01" * 4000)
    first = out.next_chunk(0.0)
    assert first is not None and first.generation == 0
    assert out.drop(0.0) == 4000 - len(first.payload)
    assert out.generation == 1 and not out.has_audio and out.delay(0.0) is None
    out.push("b", 0, b"\x02" * 160)
    c = out.next_chunk(0.0)  # the lead was reset: Twilio's queue is empty after clear
    assert c is not None and c.generation == 1 and c.item_id == "b"


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="max_lead_ms"):
        OutboundAudio(max_lead_ms=10)
    with pytest.raises(ValueError):
        OutboundAudio(max_chunk_frames=0)
