"""The model's service fails mid-call and the call keeps talking: sockets dropped at seeded
random points, slow deltas, error events, a model that stops answering, a silent socket, and
the service's session limit set short. After each fault the caller hears model audio, no
task of the call is left, and every turn is stored once."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fault_calls import (
    REALTIME,
    RECOVERY,
    assert_all_played_in_order,
    assert_history_complete,
    bus_event,
    caller_speech,
    leaked_tasks,
    model_audio_of,
    model_items_audio,
    say_and_hear,
    scenario,
    stored_turns,
    task_marks,
    until_idle,
    until_quiet,
    warm_speech,
)
from phone_stack import Stack, phone_stack

from foreman.config import IdentityConfig
from foreman.phone.clips import clip
from foreman.testing.fake_twilio import FakeTwilioCaller
from foreman.testing.mock_realtime import Faults, Match, Reply, Rule, Scenario
from foreman.testing.timeouts import unit

pytestmark = pytest.mark.e2e


def realtime(**recovery: Any) -> dict[str, Any]:
    return {**REALTIME, "recovery": {**RECOVERY, **recovery}}


async def finish(stack: Stack, caller: FakeTwilioCaller) -> str:
    """The caller hangs up; returns the session id once the session has ended, after
    checking that nothing of it is left running."""
    sid = f"call-{caller.call_sid}"
    marks = task_marks(stack, sid)
    await until_idle(stack, caller, sid)  # hanging up mid-reply races Twilio's `stop`
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
        await warm_speech()
        caller = stack.caller(continuous_silence=True)
        async with caller, explained(stack):
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
            first = stack.mock.sessions[0]
            cut = {
                e["item_id"] for e in first.received if e["type"] == "conversation.item.truncate"
            }
            known = any(  # words the first session had for sure (a cut reply may be empty)
                e["type"] == "conversation.item.input_audio_transcription.completed"
                or (
                    e["type"] == "response.output_audio_transcript.done" and e["item_id"] not in cut
                )
                for e in first.sent[:-1]
            )
            if known:
                assert replayed, "the conversation was replayed"
            await until_quiet(caller)
            sid = await finish(stack, caller)
        assert not caller.validation_errors
    assert_history_complete(stack, await stored_turns(stack, sid))


@contextlib.asynccontextmanager
async def explained(stack: Stack) -> AsyncIterator[None]:
    """A failure says what each model session saw (audio and deltas left out)."""
    try:
        yield
    except BaseException as exc:
        wire = [
            [e["type"] for e in s.received if e["type"] != "input_audio_buffer.append"]
            + ["<- received | sent ->"]
            + [e["type"] for e in s.sent if not e["type"].endswith(".delta")]
            for s in stack.mock.sessions
        ]
        raise AssertionError(f"{exc!r}; the model sessions: {wire}") from exc


async def sweep(seeds: list[int], tmp_path: Any) -> None:
    """Calls of a batch run side by side (each with its own server and mock): the calls
    spend their time in real-time audio, not on the CPU."""
    batch = 10
    for start in range(0, len(seeds), batch):
        group = seeds[start : start + batch]
        results = await asyncio.gather(
            *(drop_once(seed, tmp_path) for seed in group), return_exceptions=True
        )
        failed = [(seed, r) for seed, r in zip(group, results, strict=True) if r is not None]
        assert not failed, f"seeds that failed: {failed}"


async def test_a_dropped_model_socket_at_seeded_points(tmp_path: Any) -> None:
    """10 calls, each dropped at its own seeded point. To repeat a failing seed:
    FOREMAN_FAULT_SEEDS=17 (a comma-separated list)."""
    chosen = os.environ.get("FOREMAN_FAULT_SEEDS")
    seeds = [int(s) for s in chosen.split(",")] if chosen else list(range(10))
    await sweep(seeds, tmp_path)


@pytest.mark.slow
async def test_a_dropped_model_socket_at_100_seeded_points(tmp_path: Any) -> None:
    await sweep(list(range(100)), tmp_path)


Hook = Callable[[Stack, FakeTwilioCaller], Awaitable[None]]


async def one_call(
    tmp_path: Any,
    faults: Faults,
    *,
    turns: int = 2,
    first: Hook | None = None,
    between: Hook | None = None,
    **recovery: Any,
) -> tuple[Stack, list[dict[str, Any]], FakeTwilioCaller]:
    """A call with `faults` that talks `turns` times, each time hearing the model; checks
    the history and the tasks; returns the stack and the session's warnings. `first` runs
    before the caller says anything, `between` after the first turn."""
    async with phone_stack(
        scenario(), realtime=realtime(**recovery), tools_db=str(tmp_path / "f.db")
    ) as stack:
        stack.mock.faults = faults
        await warm_speech()
        warned = stack.app.state.bus.subscribe(maxsize=1000, kinds=("session.warning",))
        caller = stack.caller(continuous_silence=True)
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            if first is not None:
                await first(stack, caller)
            for turn in range(turns):
                if turn == 1 and between is not None:
                    await between(stack, caller)
                heard = await say_and_hear(caller)
                assert heard in all_model_audio(stack)
            await until_quiet(caller)
            sid = await finish(stack, caller)
        assert not caller.validation_errors
        warnings = []
        while (event := warned.get_nowait()) is not None:
            warnings.append(dict(event.data))
    assert_history_complete(stack, await stored_turns(stack, sid))
    return stack, warnings, caller


def all_model_audio(stack: Stack) -> bytes:
    return b"".join(model_audio_of(stack, i) for i in range(len(stack.mock.sessions)))


def codes(warnings: list[dict[str, Any]]) -> list[str | None]:
    return [w["code"] for w in warnings]


async def test_slow_deltas_are_not_a_stall(tmp_path: Any) -> None:
    # Each 100 ms of audio comes 120 ms late: slower than real time, still a live model.
    stack, warnings, caller = await one_call(
        tmp_path, Faults(delay_deltas_ms=120), stall_timeout_s=1.5
    )
    assert len(stack.mock.sessions) == 1
    assert not any(e["type"] == "response.cancel" for e in stack.mock.sessions[0].received)
    assert warnings == []
    assert_all_played_in_order(bytes(caller.played), model_items_audio(stack))  # late, all


async def test_error_events_do_not_end_the_call(tmp_path: Any) -> None:
    async def errors(stack: Stack, caller: FakeTwilioCaller) -> None:
        await stack.mock.inject(
            {"type": "error", "error": {"type": "server_error", "message": "Server error."}}
        )
        await stack.mock.inject(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "rate_limit_exceeded",
                    "message": "Slow down.",
                },
            }
        )

    stack, warnings, caller = await one_call(tmp_path, Faults(), between=errors)
    assert len(stack.mock.sessions) == 1
    assert codes(warnings) == [None, "rate_limit_exceeded"]
    assert_all_played_in_order(bytes(caller.played), model_items_audio(stack))


async def test_a_reply_that_freezes_is_cancelled_and_asked_again(tmp_path: Any) -> None:
    async def listen(stack: Stack, caller: FakeTwilioCaller) -> None:
        # The greeting stops after its first 100 ms and never finishes; the caller waits
        # in silence and hears the model again.
        await caller.wait_played_ms(100 + 300, timeout=unit(10))

    stack, _, _ = await one_call(
        tmp_path, Faults(stall_responses=1), first=listen, stall_timeout_s=1.0
    )
    first = stack.mock.sessions[0]
    assert len(stack.mock.sessions) == 1  # a nudge was enough: no reconnect
    cancel = next(i for i, e in enumerate(first.received) if e["type"] == "response.cancel")
    assert any(e["type"] == "response.create" for e in first.received[cancel:])
    done = [e for e in first.sent if e["type"] == "response.done"]
    assert done[0]["response"]["status"] == "cancelled"


async def test_a_turn_the_model_ignores_is_asked_again(tmp_path: Any) -> None:
    stack, _, _ = await one_call(tmp_path, Faults(ignore_turns=1), response_timeout_s=1.0)
    first = stack.mock.sessions[0]
    assert len(stack.mock.sessions) == 1
    committed = next(
        i for i, e in enumerate(first.sent) if e["type"] == "input_audio_buffer.committed"
    )
    created = [e for e in first.sent[committed:] if e["type"] == "response.created"]
    asked = [e for e in first.received if e["type"] == "response.create"]
    assert created and len(asked) >= 2  # the greeting's, then the watchdog's


async def test_a_hung_service_is_left_for_a_new_session(tmp_path: Any) -> None:
    # After the greeting starts, the first connection goes silent and deaf (no pongs).
    stack, warnings, _ = await one_call(
        tmp_path,
        Faults(freeze_after_events=4, faulty_connections=1),
        stall_timeout_s=1.0,
        ping_interval_s=0.5,
        ping_timeout_s=0.5,
    )
    assert stack.mock.sessions[0].frozen and len(stack.mock.sessions) == 2
    assert "reconnected" in codes(warnings)
    # The cut greeting is continued on the new session.
    again = [
        e for e in stack.mock.sessions[1].received
        if e["type"] == "response.create" and "line dropped" in str(e.get("response"))
    ]  # fmt: skip
    assert again


async def test_session_limit_rolls_over_at_a_pause_with_nothing_lost(tmp_path: Any) -> None:
    # The mock ends sessions after 4 s as the service does after 60 min; Foreman moves on
    # after 1.5 s, at the first pause, before the service has to.
    stack, warnings, caller = await one_call(
        tmp_path,
        Faults(session_time_limit_s=4.0),
        turns=2,
        session_limit_s=4.0,
        rollover_after_s=1.5,
    )
    sessions = stack.mock.sessions
    assert len(sessions) >= 2
    assert not any(
        e["type"] == "error" and e["error"].get("code") == "session_expired"
        for e in sessions[0].sent
    )  # moved before the limit
    assert warnings == []  # not an outage: nothing to warn about
    # The new session got the conversation; nothing the model said was lost on the way.
    creates = [e for e in sessions[1].received if e["type"] == "conversation.item.create"]
    assert creates and creates[0]["item"]["content"][0]["text"] == "Hi, Foreman here."
    # Every byte the model sent on either session played, in order, none twice.
    assert_all_played_in_order(bytes(caller.played), model_items_audio(stack))


async def test_session_expiry_without_a_pause_reconnects(tmp_path: Any) -> None:
    # The service's limit comes before Foreman's rollover: its close is a reconnect.
    stack, warnings, _ = await one_call(tmp_path, Faults(session_time_limit_s=2.5), turns=2)
    assert any(
        e["type"] == "error" and e["error"].get("code") == "session_expired"
        for e in stack.mock.sessions[0].sent
    )
    assert len(stack.mock.sessions) >= 2 and "reconnected" in codes(warnings)


async def test_when_the_model_cannot_come_back_the_call_ends_politely(tmp_path: Any) -> None:
    """Every connection drops: after the window the caller hears the packaged goodbye and
    the call is hung up through Twilio REST, with the reason on record."""
    async with phone_stack(
        scenario(), realtime=realtime(reconnect_window_s=1.0), tools_db=str(tmp_path / "f.db")
    ) as stack:
        stack.mock.faults = Faults(drop_after_events=8)
        caller = stack.caller(continuous_silence=True)
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            sid = f"call-{caller.call_sid}"
            ended = await bus_event(stack, "session.ended", lambda d: d["session_id"] == sid)
            hangup = await stack.rest.wait_for("hangup", timeout=unit(5))
            await caller.wait_closed(timeout=unit(5))
    assert hangup == [caller.call_sid]
    assert "no new model session within 1 s" in ended["reason"]
    assert ended["error"] and "connection closed (1006)" in ended["error"]
    goodbye = clip("goodbye")  # the last thing heard, padded to whole 20 ms frames
    assert goodbye in bytes(caller.played)[-len(goodbye) - 160 :]


OWNER = "+15550000100"
ANN = "+15550000111"


async def test_a_pending_approval_survives_a_drop_and_its_output_comes_once(
    tmp_path: Any,
) -> None:
    """The owner asks for a text; while the approval is pending, the model's socket drops.
    The call reconnects with the pending call replayed; the approval given afterwards sends
    the SMS, and its one output reaches the new session, which answers."""
    rules = Scenario(
        [
            Rule(Match(instructions="Greet"), Reply.say("Hello.")),
            Rule(Match.tool("send_sms"), Reply.say("Sent it.")),
            Rule(Match.user_text("Ann"), Reply.call("send_sms", {"to": ANN, "body": "Late"})),
            Rule(Match.any(), Reply.say("One moment.")),
        ],
        transcripts={1: "Text Ann that I am late."},
    )
    ident = IdentityConfig(owner_numbers=[OWNER], contacts={"Ann": ANN})
    async with phone_stack(
        rules, identity=ident, realtime=realtime(), tools_db=str(tmp_path / "a.db")
    ) as stack:
        await warm_speech("Hello.", "Sent it.", "One moment.")
        caller = stack.caller(from_=OWNER, continuous_silence=True)
        async with caller:
            await caller.dial()
            stack.rest.add_live_call(caller.call_sid, caller.remote_hangup)
            await until_quiet(caller)
            await caller.play_speech(caller_speech())
            prompt = await bus_event(stack, "approval.prompt")
            call = await stack.mock.wait_for_server_event(
                "response.function_call_arguments.done", timeout=unit(5)
            )
            stack.mock.sessions[0].drop()
            await bus_event(stack, "session.warning", lambda d: d["code"] == "reconnected")
            new = stack.mock.sessions[1]
            async with httpx.AsyncClient(base_url=stack.base) as http:
                r = await http.post(
                    "/api/approval/answer", json={"id": prompt["id"], "approve": True}
                )
            assert r.status_code == 200, r.text
            (sms,) = await stack.rest.wait_for("message", timeout=unit(10))
            assert sms["to"] == ANN
            before = len(caller.played)
            await stack.mock.wait_for_server_event(
                "response.output_audio_transcript.done",
                session=new,
                predicate=lambda e: e["transcript"] == "Sent it.",
                timeout=unit(10),
            )
            await caller.wait_until(lambda: len(caller.played) >= before + 8 * 300, unit(10))
            assert bytes(caller.played[before : before + 8 * 300]) in model_audio_of(stack, 1)
            await until_quiet(caller)
            await finish(stack, caller)
    creates = [e["item"] for e in new.received if e["type"] == "conversation.item.create"]
    calls = [c for c in creates if c["type"] == "function_call"]
    outputs = [
        e["item"]
        for s in stack.mock.sessions
        for e in s.received
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    ]
    assert [c["call_id"] for c in calls] == [call["call_id"]]  # replayed, still pending
    assert [o["call_id"] for o in outputs] == [call["call_id"]]  # one output, after it
    assert creates.index(calls[0]) < creates.index(outputs[0])
