"""The echo gate's decisions, frame by frame (levels are what matter here, so tones)."""

from __future__ import annotations

import numpy as np

from foreman.audio.echo_gate import EchoGate, level_db


def frame_at(db: float, n: int = 320) -> bytes:
    amplitude = 32768 * 10 ** (db / 20) * np.sqrt(2)
    return (amplitude * np.sin(np.arange(n) * 0.3)).astype("<i2").tobytes()


def test_levels_are_dbfs() -> None:
    assert abs(level_db(frame_at(-20)) + 20) < 0.2


def test_a_room_with_quiet_echo_lets_a_normal_voice_barge_in_once_learnt() -> None:
    gate = EchoGate(guard_db=6)
    for _ in range(100):
        gate.frame(frame_at(-60), assistant_playing=False)  # the room's floor
    user = frame_at(-30)
    # At first the gate assumes a loopback (echo as loud as played): -30 is not the user.
    gate.output(-20)
    assert [gate.frame(user, True)[1] for _ in range(5)] == [False] * 5
    # Two seconds of echo 20 dB under what is played teach it the room.
    for _ in range(100):
        gate.output(-20)
        audio, over = gate.frame(frame_at(-40), True)
        assert not over and audio == bytes(len(audio))  # the echo never reaches the model
    assert -21 < gate.coupling_db < -19
    decisions = [gate.frame(user, True)[1] for _ in range(4)]
    assert decisions == [False, False, True, False]  # 60 ms of it, once
    assert gate.frame(user, True)[0] == user  # and the user's audio passes from then on


def test_the_gate_holds_through_a_gap_in_the_reply_and_opens_after() -> None:
    gate = EchoGate(guard_db=6, hold_ms=200)
    gate.output(-20)
    echo = frame_at(-21)
    for _ in range(5):  # the reply paused (nothing queued), the echo tail goes on
        audio, over = gate.frame(echo, assistant_playing=False)
        assert audio == bytes(len(echo)) and not over
    for _ in range(10):
        audio, _ = gate.frame(echo, assistant_playing=False)
    assert audio == echo  # past the hold: the room is the user's again
