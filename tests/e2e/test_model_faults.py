"""The model's service fails mid-call and the call keeps talking: sockets dropped at seeded
random points, slow deltas, error events, a model that stops answering, a silent socket, and
the service's session limit set short. After each fault the caller hears model audio, no
task of the call is left, and every turn is stored once."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from fault_calls import (
    REALTIME,
    RECOVERY,
    assert_history_complete,
    bus_event,
    leaked_tasks,
    model_audio_of,
    say_and_hear,
    scenario,
    stored_turns,
    task_marks,
    until_quiet,
)
from phone_stack import Stack, phone_stack

from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import Faults

pytestmark = pytest.mark.e2e


def realtime(**recovery: Any) -> dict[str, Any]:
    return {**REALTIME, "recovery": {**RECOVERY, **recovery}}


async def finish(stack: Stack, caller: FakeTwilioCaller) -> str:
    """The caller hangs up; returns the session id once the session has ended, after
    checking that nothing of it is left running."""
    sid = f"call-{caller.call_sid}"
    marks = task_marks(stack, sid)
    await caller.hangup()
    ended = await bus_event(stack, "session.ended", lambda d: d["session_id"] == sid)
    assert ended["error"] is None, ended
    # The history writer finishes with the call's summary; then nothing of the call is left.
    await bus_event(
        stack, "history.turn", lambda d: d["turn"] == "summary" and d["session_id"] == sid
    )
    assert leaked_tasks(marks) == []
    return sid


async def drop_once(seed: int, tmp_path: Any) -> None:
    """One call whose first model socket drops after a seeded random number of events
    (anywhere from the greeting to the caller's second answer)."""
    faults = Faults(drop_between=(3, 60), seed=seed, faulty_connections=1)
    async with phone_stack(
        scenario(), realtime=realtime(), tools_db=str(tmp_path / f"f{seed}.db")
    ) as stack:
        stack.mock.faults = faults
        caller = stack.caller(continuous_silence=True)
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            for _ in range(4):  # talk until the fault has happened
                if len(stack.mock.sessions) > 1:
                    break
                await say_and_hear(caller)
            reconnected = await bus_event(
                stack, "session.warning", lambda d: d["code"] == "reconnected"
            )
            assert stack.mock.sessions[0].dropped, reconnected
            # After the fault: the caller speaks and hears the model's new session.
            heard = await say_and_hear(caller)
            assert heard in model_audio_of(stack, len(stack.mock.sessions) - 1)
            # The new session was given the conversation before anything else.
            replayed = [
                e["item"]["type"]
                for e in stack.mock.sessions[1].received
                if e.get("type") == "conversation.item.create"
            ]
            words = (
                "response.output_audio_transcript.delta",
                "conversation.item.input_audio_transcription.completed",
            )
            if any(e["type"] in words for e in stack.mock.sessions[0].sent):
                assert replayed, "the conversation was replayed"
            await until_quiet(caller)
            sid = await finish(stack, caller)
        assert not caller.validation_errors
    assert_history_complete(stack, await stored_turns(stack, sid))


async def sweep(seeds: range, tmp_path: Any) -> None:
    """Calls of a batch run side by side (each with its own server and mock): the calls
    spend their time in real-time audio, not on the CPU."""
    batch = 10
    for start in range(seeds.start, seeds.stop, batch):
        group = range(start, min(start + batch, seeds.stop))
        results = await asyncio.gather(
            *(drop_once(seed, tmp_path) for seed in group), return_exceptions=True
        )
        failed = [(seed, r) for seed, r in zip(group, results, strict=True) if r is not None]
        assert not failed, f"seeds that failed: {failed}"


async def test_a_dropped_model_socket_at_seeded_points(tmp_path: Any) -> None:
    """10 calls, each dropped at its own seeded point; FOREMAN_FAULT_RUNS sets how many."""
    await sweep(range(int(os.environ.get("FOREMAN_FAULT_RUNS", "10"))), tmp_path)


@pytest.mark.slow
async def test_a_dropped_model_socket_at_100_seeded_points(tmp_path: Any) -> None:
    await sweep(range(100), tmp_path)
